// cxx_test.cc: C++ new/delete, containers, std::thread and thread_local destructors reach
// hakmem through libstdc++'s operator new. Prints "N passed, N failed".
#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

static int passed, failed;
static void check(bool ok, const char *what) {
  if (ok) {
    passed++;
  } else {
    failed++;
    std::fprintf(stderr, "failed: %s\n", what);
  }
}

static std::atomic<int> trackers_destroyed;

struct Tracker {
  std::vector<std::string> names;
  ~Tracker() {
    names.clear();
    names.shrink_to_fit();
    trackers_destroyed++;
  }
};
thread_local Tracker tracker;

int main() {
  auto heap_of = reinterpret_cast<void *(*)(const void *)>(dlsym(RTLD_DEFAULT, "hak_heap_of"));
  int *one = new int(42);
  check(heap_of != nullptr && heap_of(one) != nullptr, "operator new comes from hakmem");
  delete one;
  auto *arr = new double[1000]();
  check(heap_of != nullptr && heap_of(arr) != nullptr, "operator new[] comes from hakmem");
  delete[] arr;
  struct alignas(256) Over { char c[300]; };
  auto *over = new Over;
  check((reinterpret_cast<uintptr_t>(over) & 255) == 0, "aligned new");
  delete over;

  std::map<std::string, std::vector<int>> m;
  for (int i = 0; i < 20000; i++) m["key" + std::to_string(i % 997)].push_back(i);
  size_t total = 0;
  for (auto &kv : m) total += kv.second.size();
  check(total == 20000 && m.size() == 997, "map of vectors");

  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<std::string>> out(8);
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([t, &out] {
      for (int i = 0; i < 1000; i++) tracker.names.push_back(std::string(40 + i % 100, 'a' + t));
      out[t] = std::make_unique<std::string>(tracker.names.back());
    });
  }
  for (auto &th : threads) th.join();
  check(trackers_destroyed == 8, "every thread's thread_local destructor ran at its exit");
  bool intact = true, ours_all = heap_of != nullptr;
  for (int t = 0; t < 8; t++) {
    const std::string &s = *out[t];
    intact = intact && s == std::string(40 + 999 % 100, static_cast<char>('a' + t));
    ours_all = ours_all && heap_of != nullptr && heap_of(out[t].get()) != nullptr &&
               heap_of(s.data()) != nullptr;
  }
  check(intact, "strings made by exited threads keep their contents");
  check(ours_all, "strings made by exited threads are hakmem blocks");
  out.clear();  // frees strings allocated by the exited threads
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
