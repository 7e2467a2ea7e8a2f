// What each value of an enum stands for, as a table to search instead of a switch, and an error
// category whose messages come from a list.
#pragma once

#include <boost/system/error_category.hpp>

#include <array>
#include <cstddef>
#include <optional>
#include <string>

namespace tokend::core {

template <class Enum, class Value>
struct enum_entry {
  Enum key;
  Value value;
};

template <class Enum, class Value, std::size_t N>
using enum_table = std::array<enum_entry<Enum, Value>, N>;

// The value of `key`, or `fallback` when the table has no entry for it.
template <class Enum, class Value, std::size_t N>
[[nodiscard]] constexpr Value value_of(const enum_table<Enum, Value, N>& table, Enum key,
                                       Value fallback) noexcept {
  for (const auto& entry : table) {
    if (entry.key == key) return entry.value;
  }
  return fallback;
}

// The key of the first entry whose value is `value`.
template <class Enum, class Value, std::size_t N, class Other>
[[nodiscard]] constexpr std::optional<Enum> key_of(const enum_table<Enum, Value, N>& table,
                                                   const Other& value) noexcept {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.key;
  }
  return std::nullopt;
}

// An error category for an enum of error codes numbered from 1 (0 is success): a name, and a fixed
// message per code in the enum's order (`unknown` for any other value). Fixed texts, so they are
// safe to show a client.
template <std::size_t N>
class message_category final : public boost::system::error_category {
 public:
  constexpr message_category(const char* name, const std::array<const char*, N>& messages,
                             const char* unknown) noexcept
      : name_(name), messages_(messages), unknown_(unknown) {}

  [[nodiscard]] const char* name() const noexcept override { return name_; }
  [[nodiscard]] std::string message(int ev) const override {
    const auto index = static_cast<std::size_t>(ev) - 1;  // only read when ev >= 1
    return ev >= 1 && index < N ? messages_[index] : unknown_;
  }

 private:
  const char* name_;
  std::array<const char*, N> messages_;
  const char* unknown_;
};

}  // namespace tokend::core
