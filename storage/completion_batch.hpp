// A store that answers many operations at once on its own thread (the RocksDB writer after a
// committed batch) opens a completion_batch around calling their handlers. A handler that hands its
// answer on to another thread may leave that hand-off with the batch instead, in a group named by
// the thread's queue; when the batch closes, each group goes over at once: one hand-off, and one
// wake-up of that thread, per group instead of one per answer. Stores that open no batch, and
// handlers that ignore it, behave as before.
#pragma once

#include <memory>
#include <utility>
#include <vector>

namespace tokend::storage {

class completion_batch {
 public:
  // The hand-offs gathered for one target.
  class group {
   public:
    group() = default;
    group(const group&) = delete;
    group& operator=(const group&) = delete;
    virtual ~group() = default;
    // Called once, when the batch closes, on the store's thread: hands everything gathered over.
    virtual void close() = 0;
  };

  // Open on this thread until destroyed; closes its groups in the order they were made.
  completion_batch() noexcept : outer_(current_) { current_ = this; }
  ~completion_batch() {
    current_ = outer_;
    // A group that fails to hand over (out of memory) must not keep the others from theirs.
    for (auto& entry : groups_) {
      try {
        entry.made->close();
      } catch (...) {  // NOLINT(bugprone-empty-catch): what it held is freed with it
      }
    }
  }
  completion_batch(const completion_batch&) = delete;
  completion_batch& operator=(const completion_batch&) = delete;

  // The batch open on this thread, or nullptr when the handler runs outside one.
  [[nodiscard]] static completion_batch* current() noexcept { return current_; }

  // The group of type Group for `target`, made by `make()` (a std::unique_ptr<Group>) when the
  // batch holds none yet. A batch holds few targets (one per io thread), so a scan is enough.
  template <class Group, class Make>
  Group& group_for(const void* target, Make&& make) {
    const void* const kind = kind_of<Group>();
    for (auto& entry : groups_) {
      if (entry.target == target && entry.kind == kind) return static_cast<Group&>(*entry.made);
    }
    std::unique_ptr<Group> made = std::forward<Make>(make)();
    Group& out = *made;
    groups_.push_back({target, kind, std::move(made)});
    return out;
  }

 private:
  template <class Group>
  static const void* kind_of() noexcept {
    static const char tag = 0;
    return &tag;
  }

  struct entry {
    const void* target;
    const void* kind;
    std::unique_ptr<group> made;
  };

  static inline thread_local completion_batch* current_ = nullptr;
  completion_batch* outer_;
  std::vector<entry> groups_;
};

}  // namespace tokend::storage
