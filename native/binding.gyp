{
  "targets": [
    {
      "target_name": "e2k_native",
      "sources": [
        "src/binding.cc",
        "src/core/dirty_tracker.cc",
        "src/core/fault_thread.cc",
        "src/core/page_ops.cc",
        "src/core/probe.cc",
        "src/core/region.cc",
        "src/core/sys_error.cc",
        "src/core/uffd.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "ldflags": ["-pthread"],
      "conditions": [["OS!='linux'", { "type": "none", "sources": [] }]]
    }
  ]
}
