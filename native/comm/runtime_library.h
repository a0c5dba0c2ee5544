// A shared library opened at run time (dlopen), so the addon loads where it is absent; failing to
// find it or one of its symbols is an ERR_COMM_UNAVAILABLE that names the file and the remedy.
#pragma once

#include <dlfcn.h>

#include <string>
#include <vector>

#include "../kernels/common.h"

namespace mixt {

class RuntimeLibrary {
 public:
  // what: "MPI"; remedy: how to install it or point at it.
  RuntimeLibrary(std::string what, std::string remedy) : what_(std::move(what)), remedy_(std::move(remedy)) {}

  [[noreturn]] void unavailable(const std::string& why) const {
    throw Error("ERR_COMM_UNAVAILABLE", what_ + " is unusable: " + why + " (" + remedy_ + ")");
  }
  // Opens the first of `names` that loads; the error lists each one tried and why it failed.
  void open(const std::vector<std::string>& names, int flags) {
    std::string tried;
    for (const std::string& name : names) {
      lib_ = dlopen(name.c_str(), flags);
      if (lib_) {
        file_ = name;
        return;
      }
      const char* err = dlerror();
      tried += (tried.empty() ? "" : "; ") + name + ": " + (err ? err : "not found");
    }
    unavailable("could not load it (" + tried + ")");
  }
  bool is_open() const { return lib_ != nullptr; }
  void close() {
    if (lib_) dlclose(lib_);
    lib_ = nullptr;
  }
  const std::string& file() const { return file_; }
  void* symbol(const char* name, const std::string& missing_means = "") const {
    void* p = dlsym(lib_, name);
    if (!p) unavailable(file_ + (missing_means.empty() ? " has no " + std::string(name) : " exports no " + std::string(name) + ": " + missing_means));
    return p;
  }
  template <typename T>
  void bind(T& fn, const char* name) const {
    fn = reinterpret_cast<T>(symbol(name));
  }

 private:
  std::string what_, remedy_;
  void* lib_ = nullptr;
  std::string file_;
};

}  // namespace mixt
