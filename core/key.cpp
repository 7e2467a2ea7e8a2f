// Key generation and checking; see key.hpp for the format.
#include "core/key.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace tokend::core {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is refused: keys are canonical lowercase
}

std::uint32_t crc32_of(const std::uint8_t* data, std::size_t n) noexcept {
  return static_cast<std::uint32_t>(::crc32(0L, data, static_cast<uInt>(n)));
}

// OpenSSL 3's one-shot SHA256() fetches the algorithm and allocates a context on every call,
// which cost as much as hashing the key itself; fetch once, keep one context per thread.
const EVP_MD* sha256_md() noexcept {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  return md;
}

EVP_MD_CTX* thread_digest_context() noexcept {
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(),
                                                                                 &EVP_MD_CTX_free};
  return ctx.get();
}

// Random bytes drawn from OpenSSL's CSPRNG a batch at a time: RAND_bytes costs a DRBG round and a
// getpid() system call per call, more than the rest of making a key. Bytes handed out are wiped
// from the pool. One pool per thread, so no locking; tokend never forks after start-up, which is
// what would make two processes share a pool.
class random_pool {
 public:
  random_pool() = default;
  random_pool(const random_pool&) = delete;
  random_pool& operator=(const random_pool&) = delete;
  ~random_pool() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

  void take(std::uint8_t* out, std::size_t n) {
    if (bytes_.size() - used_ < n) {
      if (RAND_bytes(bytes_.data(), static_cast<int>(bytes_.size())) != 1) {
        throw std::runtime_error("CSPRNG failure while generating a key");
      }
      used_ = 0;
    }
    std::memcpy(out, bytes_.data() + used_, n);
    OPENSSL_cleanse(bytes_.data() + used_, n);
    used_ += n;
  }

 private:
  std::array<std::uint8_t, 36 * key_random_bytes> bytes_{};
  std::size_t used_ = bytes_.size();  // empty until first use
};

}  // namespace

std::string generate_key() {
  std::array<std::uint8_t, key_random_bytes + 4> raw{};
  thread_local random_pool pool;
  pool.take(raw.data(), key_random_bytes);
  const std::uint32_t crc = crc32_of(raw.data(), key_random_bytes);
  for (int i = 0; i < 4; ++i) {
    raw[key_random_bytes + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
  }
  std::string key(key_hex_length, '0');
  for (std::size_t i = 0; i < raw.size(); ++i) {
    key[2 * i] = hex_digits[raw[i] >> 4];
    key[2 * i + 1] = hex_digits[raw[i] & 0x0f];
  }
  return key;
}

bool is_well_formed_key(std::string_view key) noexcept {
  if (key.size() != key_hex_length) return false;
  std::array<std::uint8_t, key_random_bytes + 4> raw{};
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const int hi = hex_value(key[2 * i]);
    const int lo = hex_value(key[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    raw[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  std::uint32_t stored = 0;
  for (std::size_t i = key_random_bytes; i < raw.size(); ++i) stored = (stored << 8) | raw[i];
  return stored == crc32_of(raw.data(), key_random_bytes);
}

key_digest digest_key(std::string_view key) noexcept {
  key_digest d{};
  EVP_MD_CTX* ctx = thread_digest_context();
  const EVP_MD* md = sha256_md();
  unsigned int length = 0;
  if (ctx == nullptr || md == nullptr || EVP_DigestInit_ex2(ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx, key.data(), key.size()) != 1 || EVP_DigestFinal_ex(ctx, d.data(), &length) != 1 ||
      length != d.size()) {
    // Only a broken OpenSSL installation gets here; no key could be checked, so stop loudly.
    std::fputs("tokend: SHA-256 is unavailable from OpenSSL\n", stderr);
    std::abort();
  }
  return d;
}

std::string masked_key(std::string_view display_prefix) {
  std::string out(display_prefix.substr(0, display_prefix_length));
  out += "....";
  return out;
}

}  // namespace tokend::core
