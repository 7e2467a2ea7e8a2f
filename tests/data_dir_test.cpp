// The data directory of the real binary: only tokend's user can read it. A symbolic link planted at
// data/admin-token is replaced, never written through; after a start every file in the directory
// is 0600 and the directory 0700, whatever the umask tokend was started with; an existing directory
// open to others is tightened.
#define BOOST_TEST_MODULE data_dir_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "support/http_client.hpp"
#include "support/tokend_server.hpp"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace http = boost::beast::http;
using tokend::test::exit_status;
using tokend::test::sandbox;
using tokend::test::tokend_server;

mode_t mode_of(const fs::path& p) {
  struct stat st = {};
  BOOST_REQUIRE_MESSAGE(::lstat(p.c_str(), &st) == 0, "lstat " << p);
  return st.st_mode;
}

// Every entry of `dir`, recursively: directories 0700, regular files 0600 at most, no other shape.
void check_private(const fs::path& dir) {
  BOOST_TEST((mode_of(dir) & 07777) == 0700u, dir << " is " << std::oct << (mode_of(dir) & 07777));
  std::size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    const mode_t m = mode_of(entry.path());
    BOOST_TEST_CONTEXT(entry.path().filename() << " mode " << std::oct << (m & 07777)) {
      if (S_ISDIR(m)) {
        BOOST_TEST((m & 07777) == 0700u);
      } else {
        BOOST_TEST(S_ISREG(m));
        BOOST_TEST((m & 077) == 0u);
        ++files;
      }
    }
  }
  BOOST_TEST(files > 3u, "only " << files << " files: the store was not written");
}

// Runs with the widest umask a careless service manager would give it.
struct open_umask {
  open_umask() : saved(::umask(0)) {}
  ~open_umask() { ::umask(saved); }
  mode_t saved;
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_symlink_at_admin_token_is_replaced_not_followed) {
  sandbox box;
  fs::create_directories(box.data_dir());
  const fs::path victim = box.root() / "victim";
  std::ofstream(victim) << "precious\n";
  fs::permissions(victim, fs::perms(0644));
  fs::create_symlink(victim, box.data_dir() / "admin-token");
  {
    tokend_server server(box, tokend_server::options{});
    BOOST_TEST(server.terminate(10s).value_or(exit_status{}).success());
  }
  BOOST_TEST(tokend::test::read_file(victim) == "precious\n");
  BOOST_TEST((mode_of(victim) & 07777) == 0644u);
  const fs::path token = box.data_dir() / "admin-token";
  const mode_t m = mode_of(token);
  BOOST_TEST(S_ISREG(m), "admin-token is still a link or not a file");
  BOOST_TEST((m & 07777) == 0600u);
  const std::string key = tokend::test::read_file(token);
  BOOST_TEST(key.size() == tokend::core::key_hex_length + 1);
  BOOST_TEST(tokend::core::is_well_formed_key(key.substr(0, tokend::core::key_hex_length)));
  // No temporary file is left beside it.
  for (const auto& entry : fs::directory_iterator(box.data_dir())) {
    BOOST_TEST(entry.path().extension() != ".tmp", entry.path());
  }
  BOOST_TEST(box.all_output().find("symbolic link") != std::string::npos, "the replacement was not logged");
}

// A dangling link and a link to a directory are replaced the same way.
BOOST_AUTO_TEST_CASE(other_links_at_admin_token_are_replaced) {
  for (const bool to_directory : {false, true}) {
    BOOST_TEST_CONTEXT((to_directory ? "link to a directory" : "dangling link")) {
      sandbox box;
      fs::create_directories(box.data_dir());
      const fs::path target = box.root() / "elsewhere";
      if (to_directory) fs::create_directories(target);
      fs::create_symlink(target, box.data_dir() / "admin-token");
      {
        tokend_server server(box, tokend_server::options{});
        BOOST_TEST(server.terminate(10s).value_or(exit_status{}).success());
      }
      BOOST_TEST(S_ISREG(mode_of(box.data_dir() / "admin-token")));
      BOOST_TEST(fs::exists(target) == to_directory);
      if (to_directory) BOOST_TEST(fs::is_empty(target));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_new_data_directory_is_private_whatever_the_umask) {
  const open_umask wide;
  sandbox box;
  {
    tokend_server server(box, tokend_server::options{});
    // Some writes, so the store has more than its first files.
    const std::string admin =
        tokend::test::read_file(box.data_dir() / "admin-token").substr(0, tokend::core::key_hex_length);
    for (int i = 0; i < 3; ++i) {
      const auto r =
          tokend::test::request(server.api_port(), http::verb::post, "/api/v2/tokens?token=" + admin,
                                R"({"type":"admin","description":"d"})");
      BOOST_TEST(r.status == 200u);
    }
    check_private(box.data_dir());
    BOOST_TEST(server.terminate(10s).value_or(exit_status{}).success());
  }
  check_private(box.data_dir());
}

// A directory made by someone else with the usual 0755 (and files 0644 in it) is tightened.
BOOST_AUTO_TEST_CASE(an_existing_open_data_directory_is_tightened) {
  const open_umask wide;
  sandbox box;
  fs::create_directories(box.data_dir());
  fs::permissions(box.data_dir(), fs::perms(0755));
  std::ofstream(box.data_dir() / "notes") << "left by an operator\n";
  fs::permissions(box.data_dir() / "notes", fs::perms(0644));
  {
    tokend_server server(box, tokend_server::options{});
    check_private(box.data_dir());
    BOOST_TEST(server.terminate(10s).value_or(exit_status{}).success());
  }
  BOOST_TEST(box.all_output().find("data directory permissions tightened") != std::string::npos);
}

// A data directory that is a file is a clear start-up error, not a crash.
BOOST_AUTO_TEST_CASE(a_file_as_data_directory_fails_start_up) {
  sandbox box;
  std::ofstream(box.data_dir()) << "not a directory\n";
  const auto done = tokend::test::run_tokend_to_end(
      box, "serve",
      {"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", box.data_dir().string()});
  BOOST_TEST(!done.status.success());
  BOOST_TEST(done.err.find("cannot open the data directory") != std::string::npos, done.err);
  BOOST_TEST(done.err.find("Not a directory") != std::string::npos, done.err);
}
