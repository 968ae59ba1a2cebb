// The shardwise_native addon: hot kernels whose TypeScript versions (the fallback and the
// test oracle) are in src/kernels/.
#include "napi_util.h"

namespace {

napi_value Init(napi_env env, napi_value exports) {
  const struct { const char* name; napi_callback fn; } kernels[] = {
      {"embeddingBag", shardwise::EmbeddingBag},
      {"adviseHugePages", shardwise::AdviseHugePages},
      {"bucketizeCount", shardwise::BucketizeCount},
      {"bucketizePlace", shardwise::BucketizePlace},
      {"mapFile", shardwise::MapFile},
      {"stampRows", shardwise::StampRows},
  };
  for (const auto& k : kernels) {
    napi_value fn;
    napi_create_function(env, k.name, NAPI_AUTO_LENGTH, k.fn, nullptr, &fn);
    napi_set_named_property(env, exports, k.name, fn);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
