// program.cc: from CUDA C text to a loaded shared object. The text gets the kernel table
// appended (scan.cc names the kernels), is compiled by the system C++ compiler with device.h
// force-included, and is cached under a hash of everything that goes into the object: the
// text, device.h and abi.h, the compiler and its flags. An entry holds the text it was built
// from, which a hit must match byte for byte, so a collision costs a compile, never a wrong
// kernel. The text's own #include "..." files are put in place first (with #line markers), so
// that the scan sees their kernels and the hash their contents. Concurrent processes that
// need the same entry take a lock, so one compiles.
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "block.h"
#include "profile.h"
#include "program.h"

extern char **environ;

namespace emu {

namespace {

const TlcEmuApi kApi = {
    TLC_EMU_ABI,     api_syncthreads,     api_syncwarp, api_shuffle,        api_vote,
    api_ldmatrix,    api_mma_16816_bf16,  api_cp_async16, api_cp_async8, api_cp_async_commit, api_cp_async_wait,
    api_access,
};

bool read_file(const std::string &path, std::string *out) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return false;
  std::ostringstream s;
  s << f.rdbuf();
  *out = s.str();
  return static_cast<bool>(f) || f.eof();
}

bool write_file(const std::string &path, const std::string &text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  return static_cast<bool>(f);
}

std::uint64_t fnv1a(std::uint64_t h, const std::string &s) {
  for (unsigned char c : s)
    h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::string env_or(const char *name, const char *fallback) {
  const char *v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::vector<std::string> split_words(const std::string &s) {
  std::vector<std::string> words;
  std::istringstream in(s);
  for (std::string w; in >> w;)
    words.push_back(w);
  return words;
}

bool make_dirs(const std::string &path) {
  for (std::size_t i = 1; i <= path.size(); i++)
    if (i == path.size() || path[i] == '/') {
      std::string part = path.substr(0, i);
      if (mkdir(part.c_str(), 0777) != 0 && errno != EEXIST)
        return false;
    }
  return access(path.c_str(), W_OK) == 0;
}

// The text with each #include "FILE" line replaced by FILE (found beside the including file,
// then in include_dir), recursively; a file it cannot find stays an #include for the compiler
// to report.
std::string expand_includes(const std::string &text, const std::string &file, const std::string &include_dir,
                            int depth) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  std::string dir = file.find('/') == std::string::npos ? "." : file.substr(0, file.rfind('/'));
  while (std::getline(in, line)) {
    number++;
    std::size_t hash = line.find_first_not_of(" \t"), open = line.find('"'), close = line.rfind('"');
    std::size_t word = hash == std::string::npos ? hash : line.find_first_not_of(" \t", hash + 1);
    std::string body;
    if (depth < 32 && word != std::string::npos && line[hash] == '#' && line.compare(word, 7, "include") == 0 &&
        open != std::string::npos && close > open + 1) {
      std::string name = line.substr(open + 1, close - open - 1), found;
      for (const std::string &d : {dir, include_dir})
        if (found.empty() && !d.empty() && name[0] != '/' && read_file(d + "/" + name, &body))
          found = d + "/" + name;
      if (found.empty() && name[0] == '/' && read_file(name, &body))
        found = name;
      if (!found.empty()) {
        out += "#line 1 \"" + found + "\"\n" + expand_includes(body, found, include_dir, depth + 1);
        out += "\n#line " + std::to_string(number + 1) + " \"" + file + "\"\n";
        continue;
      }
    }
    out += line + "\n";
  }
  return out;
}

// The kernel table that lets the emulator call each kernel by name with its parameter types.
std::string kernel_table(const std::vector<KernelInfo> &kernels) {
  std::string t = "\n#line 1 \"<tlc emulator: kernel table>\"\n"
                  "extern \"C\" __attribute__((visibility(\"default\"))) const TlcEmuKernel tlc_emu_kernels[] = {\n";
  for (const KernelInfo &k : kernels)
    t += "  TLC_EMU_KERNEL(" + k.name + ", " + (k.can_sync ? "1" : "0") + ", " + std::to_string(k.static_shared) + "),\n";
  return t + "  {nullptr, nullptr, 0, 0, 0}};\n";
}

// Runs argv with stdout and stderr into log; true when it exits with status 0.
bool run(const std::vector<std::string> &argv, const std::string &log, std::string *error) {
  std::vector<char *> args;
  for (const std::string &a : argv)
    args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    *error = "cannot run the C++ compiler '" + argv[0] + "': " + std::strerror(rc) + " (TLC_EMU_CXX names another)";
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return true;
  std::string messages;
  read_file(log, &messages);
  // Enough of the compiler's messages to act on; the first error comes first.
  std::size_t cut = 0;
  for (int lines = 0; cut != std::string::npos && lines < 60; lines++)
    cut = messages.find('\n', cut + 1);
  if (cut != std::string::npos)
    messages = messages.substr(0, cut) + "\n[... more in " + log + "]";
  *error = "the C++ compiler could not compile the program:\n" + messages;
  return false;
}

struct TlsSearch {
  const void *inside;
  std::size_t size;
  bool found;
};

int find_tls(struct dl_phdr_info *info, std::size_t, void *data) {
  auto *s = static_cast<TlsSearch *>(data);
  auto a = reinterpret_cast<ElfW(Addr)>(s->inside);
  bool here = false;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) &p = info->dlpi_phdr[i];
    if (p.p_type == PT_LOAD && a >= info->dlpi_addr + p.p_vaddr && a < info->dlpi_addr + p.p_vaddr + p.p_memsz)
      here = true;
  }
  if (!here)
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_TLS)
      s->size = info->dlpi_phdr[i].p_memsz;
  s->found = true;
  return 1;
}

Program *open_object(const std::string &path, const std::string &origin, std::string *error) {
  void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    *error = "cannot load the compiled program " + path + ": " + dlerror();
    return nullptr;
  }
  auto attach = reinterpret_cast<int (*)(const TlcEmuApi *)>(dlsym(h, TLC_EMU_ATTACH));
  auto slot = reinterpret_cast<TlcEmuThread **(*)(void)>(dlsym(h, TLC_EMU_SLOT));
  auto kernels = static_cast<const TlcEmuKernel *>(dlsym(h, TLC_EMU_KERNELS));
  if (!attach || !slot || !kernels) {
    *error = "the compiled program " + path + " lacks the emulator's entry points (was device.h included?)";
    dlclose(h);
    return nullptr;
  }
  int abi = attach(&kApi);
  if (abi != TLC_EMU_ABI) {
    *error = "the compiled program " + path + " was built for emulator ABI " + std::to_string(abi) + ", not " +
             std::to_string(TLC_EMU_ABI);
    dlclose(h);
    return nullptr;
  }
  auto *p = new Program;
  p->handle = h;
  p->origin = origin;
  p->kernels = kernels;
  p->slot = slot;
  TlsSearch s = {reinterpret_cast<const void *>(slot), 0, false};
  dl_iterate_phdr(find_tls, &s);
  p->tls_size = s.size;
  return p;
}

}  // namespace

Program *program_load(const std::string &text, const std::string &origin, const std::string &include_dir,
                      std::string *error) {
  const std::string here = TLC_EMU_DIR;
  std::string device, abi;
  if (!read_file(here + "/device.h", &device) || !read_file(here + "/abi.h", &abi)) {
    *error = "cannot read the emulator's device.h and abi.h in " + here;
    return nullptr;
  }
  std::string cxx = env_or("TLC_EMU_CXX", profiling() ? profile_compiler(TLC_EMU_DEFAULT_CXX).c_str() : TLC_EMU_DEFAULT_CXX);
  std::vector<std::string> flags = split_words(env_or("TLC_EMU_CXXFLAGS", "-O2"));
  if (profiling()) {
    std::vector<std::string> more = profile_flags(cxx);
    flags.insert(flags.end(), more.begin(), more.end());
  }
  std::string expanded = expand_includes(text, origin, include_dir, 0);
  std::string source = "#line 1 \"" + origin + "\"\n" + expanded + kernel_table(scan_kernels(expanded));

  std::uint64_t h = 0xcbf29ce484222325ull;
  h = fnv1a(h, device);
  h = fnv1a(h, abi);
  h = fnv1a(h, cxx);
  struct stat st;
  std::string compiler_id;
  if (stat(cxx.c_str(), &st) == 0)   // a compiler named by path: a new build of it is a new key
    compiler_id = std::to_string(st.st_size) + ":" + std::to_string(st.st_mtime);
  h = fnv1a(h, compiler_id);
  for (const std::string &f : flags)
    h = fnv1a(h, f + " ");
  h = fnv1a(h, source);
  char key[32];
  std::snprintf(key, sizeof key, "emu-%016llx", static_cast<unsigned long long>(h));

  bool cacheable = true;
  std::string dir = env_or("TLC_EMU_CACHE", TLC_EMU_DEFAULT_CACHE);
  char scratch[] = "/tmp/tlc-emu-XXXXXX";
  if (!cacheable || !make_dirs(dir)) {
    if (!mkdtemp(scratch)) {
      *error = std::string("cannot make a directory to compile the program in: ") + std::strerror(errno);
      return nullptr;
    }
    dir = scratch;
    cacheable = false;
  }
  std::string base = dir + "/" + key, object = base + ".so";
  int lock = -1;
  if (cacheable) {
    lock = open((base + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock >= 0)
      flock(lock, LOCK_EX);   // another process compiling the same text finishes first
    std::string cached;
    if (read_file(base + ".cc", &cached) && cached == source && access(object.c_str(), R_OK) == 0) {
      Program *p = open_object(object, origin, error);
      if (lock >= 0)
        close(lock);
      return p;
    }
  }
  std::string tmp = base + ".tmp" + std::to_string(getpid());
  Program *p = nullptr;
  if (!write_file(tmp + ".cc", source)) {
    *error = "cannot write " + tmp + ".cc";
  } else {
    std::vector<std::string> argv = {cxx, "-std=c++17", "-DTLC_CUDA_EMULATOR", "-include", here + "/device.h",
                                     "-I", here};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), {"-fPIC", "-shared", "-fvisibility=hidden", "-fno-strict-aliasing", "-w", "-o",
                             tmp + ".so", tmp + ".cc"});
    if (run(argv, tmp + ".log", error)) {
      if (cacheable && rename((tmp + ".so").c_str(), object.c_str()) == 0 &&
          rename((tmp + ".cc").c_str(), (base + ".cc").c_str()) == 0)
        p = open_object(object, origin, error);
      else
        p = open_object(tmp + ".so", origin, error);
    }
  }
  if (lock >= 0)
    close(lock);
  if (p) {   // a failure keeps its files: the message points at the compiler's log
    unlink((tmp + ".cc").c_str());
    unlink((tmp + ".so").c_str());   // dlopen keeps its own reference
    unlink((tmp + ".log").c_str());
    if (!cacheable)
      rmdir(scratch);
  }
  return p;
}

void program_unload(Program *p) {
  if (!p)
    return;
  dlclose(p->handle);
  delete p;
}

const TlcEmuKernel *program_kernel(const Program *p, const char *name) {
  for (const TlcEmuKernel *k = p->kernels; k->name; k++)
    if (std::strcmp(k->name, name) == 0)
      return k;
  return nullptr;
}

}  // namespace emu
