// Entry points register themselves at load time, one family per file, so adding an op family
// never edits a shared list: MIXT_EXPORT("binary", binary);
#pragma once

#include <napi.h>

#include <string>
#include <utility>
#include <vector>

namespace mixt {

using Entry = Napi::Value (*)(const Napi::CallbackInfo&);
std::vector<std::pair<const char*, Entry>>& entries();
struct Registrar {
  Registrar(const char* name, Entry fn) { entries().emplace_back(name, fn); }
};

}  // namespace mixt

#define MIXT_CONCAT_(a, b) a##b
#define MIXT_CONCAT(a, b) MIXT_CONCAT_(a, b)
#define MIXT_EXPORT(name, fn) static ::mixt::Registrar MIXT_CONCAT(mixt_registrar_, __LINE__)(name, fn)
