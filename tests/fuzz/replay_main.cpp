// Replays fuzz inputs without libFuzzer: runs LLVMFuzzerTestOneInput over every file under the
// directories (or files) given, so the normal test suite checks each seed and each past crash on
// every run, with whatever compiler builds the suite.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

namespace {

// Hidden files (.gitkeep) are bookkeeping, not inputs.
bool is_input(const fs::path& p) { return fs::is_regular_file(p) && p.filename().string().front() != '.'; }

std::vector<fs::path> inputs_under(const fs::path& root) {
  std::vector<fs::path> out;
  if (fs::is_regular_file(root)) {
    out.push_back(root);
  } else {
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      if (is_input(entry.path())) out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());  // a stable order, so a failure reproduces the same way
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  std::size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const fs::path root(argv[i]);
    // A missing directory means a wrong path in CMake: fail rather than replay nothing.
    if (!fs::exists(root)) {
      std::fprintf(stderr, "replay: %s does not exist\n", argv[i]);
      return 2;
    }
    for (const auto& file : inputs_under(root)) {
      std::ifstream in(file, std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      // Named before it runs: a trap inside the target then points at the input that caused it.
      std::fprintf(stderr, "replay: %s\n", file.c_str());
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++replayed;
    }
  }
  std::printf("replayed %zu inputs\n", replayed);
  return replayed > 0 ? 0 : 1;
}
