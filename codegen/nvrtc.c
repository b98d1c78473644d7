// nvrtc.c: CUDA C to cubin and PTX through NVRTC, loaded with dlopen. tlc builds and runs
// without the CUDA toolkit; only the stages that need GPU code (--emit=ptx, GPU trainers)
// look for libnvrtc, and say how to point at it when it is missing.
#include "kir.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// The part of nvrtc.h tlc calls: a stable C ABI since CUDA 7.
typedef struct NvrtcProgramImpl *NvrtcProgram;
typedef struct NvrtcApi {
  const char *(*GetErrorString)(int result);
  int (*Version)(int *major, int *minor);
  int (*CreateProgram)(NvrtcProgram *prog, const char *src, const char *name, int nheaders, const char *const *headers,
                       const char *const *include_names);
  int (*CompileProgram)(NvrtcProgram prog, int noptions, const char *const *options);
  int (*GetProgramLogSize)(NvrtcProgram prog, size_t *size);
  int (*GetProgramLog)(NvrtcProgram prog, char *log);
  int (*GetPTXSize)(NvrtcProgram prog, size_t *size);
  int (*GetPTX)(NvrtcProgram prog, char *ptx);
  int (*GetCUBINSize)(NvrtcProgram prog, size_t *size);
  int (*GetCUBIN)(NvrtcProgram prog, char *cubin);
  int (*DestroyProgram)(NvrtcProgram *prog);
} NvrtcApi;

enum { NVRTC_ERROR_INVALID_OPTION = 5 };

static const char *const library_names[] = {
    "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "/usr/local/cuda/lib64/libnvrtc.so",
};

static void *open_library(void) {
  const char *env = getenv("TLC_NVRTC");
  if (env && *env)
    return dlopen(env, RTLD_NOW | RTLD_LOCAL);
  for (size_t i = 0; i < sizeof library_names / sizeof *library_names; i++) {
    void *lib = dlopen(library_names[i], RTLD_NOW | RTLD_LOCAL);
    if (lib)
      return lib;
  }
  return NULL;
}

// Loaded once per process; NULL with *error set when NVRTC cannot be found.
static const NvrtcApi *nvrtc_api(Arena *a, const char **error) {
  static NvrtcApi api;
  static bool loaded;
  if (loaded)
    return &api;
  void *lib = open_library();
  if (!lib) {
    *error = arena_printf(a, "NVRTC, which compiles the GPU kernels, was not found (%s); install the CUDA toolkit "
                          "or set TLC_NVRTC to the path of libnvrtc.so", dlerror());
    return NULL;
  }
  struct { void **slot; const char *name; } symbols[] = {
      {(void **)&api.GetErrorString, "nvrtcGetErrorString"}, {(void **)&api.Version, "nvrtcVersion"},
      {(void **)&api.CreateProgram, "nvrtcCreateProgram"},   {(void **)&api.CompileProgram, "nvrtcCompileProgram"},
      {(void **)&api.GetProgramLogSize, "nvrtcGetProgramLogSize"},
      {(void **)&api.GetProgramLog, "nvrtcGetProgramLog"},   {(void **)&api.GetPTXSize, "nvrtcGetPTXSize"},
      {(void **)&api.GetPTX, "nvrtcGetPTX"},                 {(void **)&api.GetCUBINSize, "nvrtcGetCUBINSize"},
      {(void **)&api.GetCUBIN, "nvrtcGetCUBIN"},             {(void **)&api.DestroyProgram, "nvrtcDestroyProgram"},
  };
  for (size_t i = 0; i < sizeof symbols / sizeof *symbols; i++) {
    *symbols[i].slot = dlsym(lib, symbols[i].name);
    if (!*symbols[i].slot) {
      *error = arena_printf(a, "the NVRTC library found lacks %s (CUDA 11.2 or newer is needed)", symbols[i].name);
      return NULL;
    }
  }
  loaded = true;
  return &api;
}

const char *nvrtc_version(Arena *a) {
  const char *error = NULL;
  const NvrtcApi *api = nvrtc_api(a, &error);
  int major = 0, minor = 0;
  if (!api || api->Version(&major, &minor))
    return NULL;
  return arena_printf(a, "%d.%d", major, minor);
}

static char *program_log(Arena *a, const NvrtcApi *api, NvrtcProgram prog) {
  size_t size = 0;
  if (api->GetProgramLogSize(prog, &size) || size <= 1)
    return NULL;
  char *log = arena_alloc(a, size + 1);
  if (api->GetProgramLog(prog, log))
    return NULL;
  log[size] = 0;
  return log;
}

static int fetch(Arena *a, NvrtcProgram prog, int (*get_size)(NvrtcProgram, size_t *), int (*get)(NvrtcProgram, char *),
                 char **data, size_t *size) {
  if (get_size(prog, size))
    return -1;
  *data = arena_alloc(a, *size + 1);
  (*data)[*size] = 0;
  return get(prog, *data);
}

// A program made of source and compiled with options; *prog is NULL where it could not be made.
static int compile_program(const NvrtcApi *api, const char *source, const char *name, const char *const *options,
                           int noptions, NvrtcProgram *prog) {
  *prog = NULL;
  int rc = api->CreateProgram(prog, source, name, 0, NULL, NULL);
  return rc ? rc : api->CompileProgram(*prog, noptions, options);
}

int nvrtc_compile(Arena *a, const char *source, const char *name, const char *arch, CudaCode *out, const char **error) {
  const NvrtcApi *api = nvrtc_api(a, error);
  if (!api)
    return -1;
  memset(out, 0, sizeof *out);
  // A real architecture gives a cubin for it and, from the same compile, PTX that newer
  // GPUs' drivers can still compile. NVRTC optimises and assembles the program in NVRTC_SPLIT
  // parts on threads of its own where it can (CUDA 12.1 and newer; older ones reject the
  // option, and the program is compiled again in one part).
  const char *options[] = {arena_printf(a, "--gpu-architecture=%s", arch), "--std=c++17",
                           "--device-as-default-execution-space", arena_printf(a, "--split-compile=%d", NVRTC_SPLIT)};
  int noptions = (int)(sizeof options / sizeof *options);
  NvrtcProgram prog;
  int rc = compile_program(api, source, name, options, noptions, &prog);
  if (rc == NVRTC_ERROR_INVALID_OPTION) {
    api->DestroyProgram(&prog);
    rc = compile_program(api, source, name, options, noptions - 1, &prog);
  }
  if (!prog) {
    *error = arena_printf(a, "NVRTC could not create a program: %s", api->GetErrorString(rc));
    return -1;
  }
  out->log = program_log(a, api, prog);
  if (rc) {
    *error = arena_printf(a, "internal error: NVRTC failed on the generated kernels (%s) for %s:\n%s",
                          api->GetErrorString(rc), arch, out->log ? out->log : "");
    api->DestroyProgram(&prog);
    return -1;
  }
  if (fetch(a, prog, api->GetPTXSize, api->GetPTX, &out->ptx, &out->ptx_size) ||
      fetch(a, prog, api->GetCUBINSize, api->GetCUBIN, &out->cubin, &out->cubin_size)) {
    *error = arena_printf(a, "NVRTC compiled the kernels for %s but gave no PTX or cubin", arch);
    api->DestroyProgram(&prog);
    return -1;
  }
  api->DestroyProgram(&prog);
  return 0;
}
