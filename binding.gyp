{
  "targets": [
    {
      "target_name": "shardwise_native",
      "sources": ["native/addon.cc", "native/embedding_bag.cc", "native/bucketize.cc", "native/mapped_file.cc", "native/stamp_rows.cc"],
      "cflags_cc": ["-O3", "-march=native", "-fno-exceptions", "-std=c++17"],
      "cflags_cc!": ["-fno-rtti"]
    }
  ]
}
