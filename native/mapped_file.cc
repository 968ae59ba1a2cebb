// mapFile: a read-only range of a file as an external ArrayBuffer, so that replicas of one
// shard on a machine share the page cache's copy of their rows and a new replica is ready
// without copying them. The mapping is read-only: a write from JavaScript faults (and the
// process dies) rather than reaching the file. It cannot be a private writable mapping:
// MAP_POPULATE would pre-fault those pages for writing, copying every one of them.
#include "napi_util.h"
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace shardwise {
namespace {

struct Mapping { void* base; size_t length; };

void unmap(napi_env env, void*, void* hint) {
  auto* m = static_cast<Mapping*>(hint);
  munmap(m->base, m->length);
  int64_t adjusted;
  napi_adjust_external_memory(env, -static_cast<int64_t>(m->length), &adjusted);
  delete m;
}

napi_value fail(napi_env env, const std::string& what) {
  napi_throw_error(env, "SW_MAP", what.c_str());
  return nullptr;
}

}  // namespace

// mapFile(path, byteOffset, byteLength, populate): an ArrayBuffer over bytes
// [byteOffset, byteOffset + byteLength) of the file, starting at the page boundary at or
// below byteOffset, so the range itself begins (byteLength of the buffer - byteLength) bytes
// in. populate pre-faults every page at map time (reading it from disk if the page cache is
// cold), so the first queries take no page faults.
napi_value MapFile(napi_env env, napi_callback_info info) {
  napi_value a[4];
  if (!args(env, info, a)) return fail(env, "mapFile takes (path, byteOffset, byteLength, populate)");
  size_t pathLength = 0;
  if (napi_get_value_string_utf8(env, a[0], nullptr, 0, &pathLength) != napi_ok) return fail(env, "mapFile: path must be a string");
  std::string path(pathLength, '\0');
  napi_get_value_string_utf8(env, a[0], path.data(), pathLength + 1, &pathLength);
  const int64_t offset = toInt(env, a[1]);
  const int64_t length = toInt(env, a[2]);
  bool populate = false;
  napi_get_value_bool(env, a[3], &populate);
  if (offset < 0 || length <= 0) return fail(env, "mapFile: byteOffset must be >= 0 and byteLength > 0");

  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(env, path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < offset + length) {
    close(fd);
    return fail(env, path + ": shorter than the " + std::to_string(offset + length) + " bytes mapped");
  }
  const int64_t page = sysconf(_SC_PAGESIZE);
  const int64_t start = offset - offset % page;
  const size_t mapped = static_cast<size_t>(offset - start + length);
  void* base = mmap(nullptr, mapped, PROT_READ, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, start);
  const int mapErrno = errno;
  close(fd);  // the mapping keeps the file referenced
  if (base == MAP_FAILED) return fail(env, path + ": mmap failed: " + std::strerror(mapErrno));
  // Rows are gathered at random: read-ahead beyond what is asked would only evict other pages.
  madvise(base, mapped, MADV_RANDOM);

  auto* m = new Mapping{base, mapped};
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, base, mapped, unmap, m, &buffer) != napi_ok) {
    munmap(base, mapped);
    delete m;
    return fail(env, "mapFile: this Node.js does not allow external ArrayBuffers");
  }
  // The GC weighs a buffer by the memory outside the heap it keeps alive.
  int64_t adjusted;
  napi_adjust_external_memory(env, static_cast<int64_t>(mapped), &adjusted);
  return buffer;
}

}  // namespace shardwise
