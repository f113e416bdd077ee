{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": [
        "addon/module.cc",
        "addon/errors.cc",
        "addon/mount.cc",
        "addon/statfs.cc",
        "addon/mknod.cc",
        "addon/xattr.cc",
        "addon/netns.cc",
        "addon/spawn.cc",
        "addon/read-files.cc",
        "addon/small-file.cc",
        "addon/write-file.cc",
        "addon/disk-usage.cc",
        "addon/make-cgroup.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_cc": ["-Wall", "-Wextra", "-Werror", "-std=c++17"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
