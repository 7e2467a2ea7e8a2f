// Keys as tests handle them: one that fails only its checksum, and the masked form tokend lists.
#pragma once

#include "core/key.hpp"

#include <string>

namespace tokend::test {

// `key` with its last digit changed: the right shape, a wrong checksum.
inline std::string corrupt(std::string key) {
  key.back() = key.back() == '0' ? '1' : '0';
  return key;
}

// How a list shows `key`: its display prefix and four dots.
inline std::string masked(const std::string& key) {
  return key.substr(0, core::display_prefix_length) + "....";
}

}  // namespace tokend::test
