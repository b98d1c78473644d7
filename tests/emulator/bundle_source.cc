// bundle_source.cc: a trainer's CUDA C, read back from the kernel bundle it carries in its
// ELF section .tlc_bundle (schema runtime/bundle.fbs): the prelude, then each function, as
// tlc composes the program it gives NVRTC. The emulator reads /proc/self/exe, the trainer
// that loaded it, and verifies the bundle before trusting any offset in it.
#include <elf.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "bundle_generated.h"
#include "program.h"

namespace emu {

std::string bundle_source(std::string *error) {
  const char *exe = "/proc/self/exe";
  std::ifstream f(exe, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  std::string file = s.str();
  if (!f || file.size() < sizeof(Elf64_Ehdr)) {
    *error = "cannot read this program's own file (/proc/self/exe) to find its kernels; set TLC_EMU_SOURCE";
    return "";
  }
  const auto *data = reinterpret_cast<const unsigned char *>(file.data());
  Elf64_Ehdr eh;
  std::memcpy(&eh, data, sizeof eh);
  auto inside = [&](std::uint64_t offset, std::uint64_t len) {
    return offset <= file.size() && len <= file.size() - offset;
  };
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_shentsize != sizeof(Elf64_Shdr) || !inside(eh.e_shoff, std::uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr)) ||
      eh.e_shstrndx >= eh.e_shnum) {
    *error = "this program is not a 64-bit ELF file with sections; the emulator finds a trainer's kernels in its "
             ".tlc_bundle section (set TLC_EMU_SOURCE to run another CUDA program)";
    return "";
  }
  std::vector<Elf64_Shdr> sections(eh.e_shnum);
  std::memcpy(sections.data(), data + eh.e_shoff, sections.size() * sizeof(Elf64_Shdr));
  const Elf64_Shdr &names = sections[eh.e_shstrndx];
  const char wanted[] = ".tlc_bundle";
  for (const Elf64_Shdr &sh : sections) {
    if (!inside(names.sh_offset, names.sh_size) || sh.sh_name >= names.sh_size ||
        names.sh_size - sh.sh_name < sizeof wanted ||
        std::memcmp(data + names.sh_offset + sh.sh_name, wanted, sizeof wanted))
      continue;
    if (!inside(sh.sh_offset, sh.sh_size)) {
      *error = "this trainer's .tlc_bundle section lies outside its file";
      return "";
    }
    // FlatBuffers reads aligned: copy out of the file's arbitrary offset.
    std::vector<std::uint64_t> aligned(sh.sh_size / 8 + 1);
    std::memcpy(aligned.data(), data + sh.sh_offset, sh.sh_size);
    const auto *bytes = reinterpret_cast<const std::uint8_t *>(aligned.data());
    flatbuffers::Verifier verifier(bytes, sh.sh_size);
    if (!tlc::bundle::VerifyBundleBuffer(verifier)) {
      *error = "this trainer's kernel bundle is damaged (it does not verify as runtime/bundle.fbs)";
      return "";
    }
    const tlc::bundle::Bundle *b = tlc::bundle::GetBundle(bytes);
    std::string text = b->prelude() ? b->prelude()->str() : "";
    if (b->functions())
      for (const tlc::bundle::Function *fn : *b->functions())
        text += (fn->source() ? fn->source()->str() : "") + "\n";
    return text;
  }
  *error = "this program has no kernel bundle (.tlc_bundle section): it is not a trainer built with NVRTC; set "
           "TLC_EMU_SOURCE to the CUDA C program to run";
  return "";
}

}  // namespace emu
