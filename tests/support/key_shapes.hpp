// The shapes in which a key (or enough of it to matter) may turn up in client text by mistake or on
// purpose: changed case, cut short, split by separators, percent-encoded, inside longer text. Every
// one holds a run of at least 32 of the key's hex digits once percent-decoded and its separators
// dropped, so none may ever be echoed or logged as it is.
#pragma once

#include <cctype>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace tokend::test {

// `s` with every byte written as %XX (upper-case digits when `upper`).
inline std::string percent_encode_all(const std::string& s, bool upper = true) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += std::string{'%', hex[c >> 4], hex[c & 15]};
  return out;
}

// `s` with `separator` inserted after every `every` characters.
inline std::string split_every(const std::string& s, std::size_t every, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && i % every == 0) out += separator;
    out.push_back(s[i]);
  }
  return out;
}

inline std::string upper_case(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Named shapes of `key`. With `url_safe`, only shapes that can stand in a request target or a
// header value unescaped (no space, no slash) are returned.
inline std::vector<std::pair<std::string, std::string>> key_shapes(const std::string& key,
                                                                   bool url_safe = false) {
  std::vector<std::pair<std::string, std::string>> out{
      {"upper case", upper_case(key)},
      {"minus its last character", key.substr(0, key.size() - 1)},
      {"first 32", key.substr(0, 32)},
      {"first 33", key.substr(0, 33)},
      {"first 40", key.substr(0, 40)},
      {"last 32", key.substr(key.size() - 32)},
      {"dashes every 4", split_every(key, 4, "-")},
      {"dashes every 8", split_every(key, 8, "-")},
      {"dots every 8", split_every(key, 8, ".")},
      {"underscores every 16", split_every(key, 16, "_")},
      {"colons every 2", split_every(key, 2, ":")},
      {"mixed case, dashes", split_every(upper_case(key.substr(0, 32)) + key.substr(32), 8, "-")},
      {"req. prefix", "req." + key},
      {"inside longer text", "trace-" + key.substr(0, 40) + "-end"},
      {"first 32 dashed, inside", "id-" + split_every(key.substr(0, 32), 8, "-") + "-x"},
      {"mixed separators", split_every(key.substr(0, 36), 4, "-") + "." + key.substr(36)},
      {"percent-encoded digits", percent_encode_all(key)},
      {"percent-encoded lower", percent_encode_all(key.substr(0, 32), false)},
      {"%2D separators", split_every(key, 8, "%2D")},
      {"%2d separators, upper case", split_every(upper_case(key), 16, "%2d")},
      {"encoded twice", split_every(key.substr(0, 40), 8, "%252D")},
  };
  if (!url_safe) {
    out.emplace_back("spaces every 8", split_every(key, 8, " "));
    out.emplace_back("slashes every 16", split_every(key, 16, "/"));
    out.emplace_back("every separator", split_every(key, 5, "-_.:/ "));
  } else {
    out.emplace_back("%20 every 8", split_every(key, 8, "%20"));
    out.emplace_back("%2F every 16", split_every(key, 16, "%2F"));
  }
  for (std::size_t n = 34; n < key.size(); n += 7) {
    out.emplace_back("prefix " + std::to_string(n), key.substr(0, n));
  }
  return out;
}

}  // namespace tokend::test
