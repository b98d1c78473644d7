// scan.cc: what the emulator reads in a program's text before compiling it: the names of its
// extern "C" __global__ functions (for the kernel table it appends), and which of them can
// reach a barrier or warp operation. Those run on fibers; the others, which most of tlc's
// kernels are (one thread per element, no barrier), run each thread as a plain call, many
// times faster. "Can reach" is read from the text: a function reaches one if its body names a
// synchronising operation, or a function or macro of the text that does. This errs on the
// safe side (a name in dead code counts); what it cannot see (a call through a pointer to
// function) is caught at run time, where the operation reports that it ran without fibers.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "program.h"

namespace emu {

namespace {

// The operations that wait for other threads of the block or warp.
const char *const kSynchronising[] = {
    "__syncthreads",    "__syncthreads_count", "__syncthreads_and", "__syncthreads_or",
    "__syncwarp",       "__shfl_sync",         "__shfl_up_sync",    "__shfl_down_sync",
    "__shfl_xor_sync",  "__ballot_sync",       "__all_sync",        "__any_sync",
    "tlc_ldmatrix_x4",  "tlc_ldmatrix_x2",     "tlc_ldmatrix_x4_trans", "tlc_ldmatrix_x2_trans",
    "tlc_mma_16816_bf16", "tlc_emu_api",       "tlc_emu_shuffle",
};

// Names before a parenthesis that are not the function being defined.
const char *const kNotFunctions[] = {"__launch_bounds__", "__attribute__", "__align__", "alignas", "decltype",
                                     "sizeof", "noexcept", "throw", "if", "for", "while", "switch", "return",
                                     "__declspec", "static_assert", "operator"};

struct Token {
  enum Kind { kIdent, kString, kPunct, kOther } kind;
  std::string text;
};

bool ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }

class Lexer {
 public:
  explicit Lexer(const std::string &text) : s_(text) {}

  // The tokens outside preprocessor lines; #define NAME ... records NAME's replacement.
  std::vector<Token> run(std::map<std::string, std::set<std::string>> *macros) {
    std::vector<Token> out;
    bool line_start = true;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == '\n') {
        line_start = true;
        i_++;
      } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        i_++;
      } else if (c == '\\' && i_ + 1 < s_.size() && s_[i_ + 1] == '\n') {
        i_ += 2;
      } else if (comment()) {
      } else if (c == '#' && line_start) {
        directive(macros);
      } else {
        line_start = false;
        Token t;
        if (!token(&t))
          break;
        out.push_back(t);
      }
    }
    return out;
  }

 private:
  bool comment() {
    if (s_.compare(i_, 2, "//") == 0) {
      while (i_ < s_.size() && s_[i_] != '\n')
        i_ += s_[i_] == '\\' && i_ + 1 < s_.size() ? 2 : 1;
      return true;
    }
    if (s_.compare(i_, 2, "/*") == 0) {
      std::size_t end = s_.find("*/", i_ + 2);
      i_ = end == std::string::npos ? s_.size() : end + 2;
      return true;
    }
    return false;
  }

  void directive(std::map<std::string, std::set<std::string>> *macros) {
    // The directive's text up to its end of line, continuations joined, comments dropped.
    i_++;
    std::string line;
    while (i_ < s_.size() && s_[i_] != '\n') {
      if (s_[i_] == '\\' && i_ + 1 < s_.size() && s_[i_ + 1] == '\n') {
        i_ += 2;
      } else if (!comment()) {
        line += s_[i_++];
      }
    }
    std::size_t p = line.find_first_not_of(" \t");
    if (p == std::string::npos || line.compare(p, 6, "define") != 0)
      return;
    p = line.find_first_not_of(" \t", p + 6);
    if (p == std::string::npos || !ident_start(line[p]))
      return;
    std::size_t q = p;
    while (q < line.size() && ident_char(line[q]))
      q++;
    std::set<std::string> &names = (*macros)[line.substr(p, q - p)];
    std::string replacement = line.substr(q);
    Lexer body(replacement);
    std::map<std::string, std::set<std::string>> none;
    for (const Token &t : body.run(&none))
      if (t.kind == Token::kIdent)
        names.insert(t.text);
  }

  bool token(Token *t) {
    char c = s_[i_];
    if (ident_start(c)) {
      std::size_t j = i_;
      while (j < s_.size() && ident_char(s_[j]))
        j++;
      t->kind = Token::kIdent;
      t->text = s_.substr(i_, j - i_);
      // A raw string: R"delim( ... )delim", with an optional encoding prefix.
      if (j < s_.size() && s_[j] == '"' && !t->text.empty() && t->text.back() == 'R') {
        std::size_t open = s_.find('(', j);
        if (open == std::string::npos)
          return false;
        std::string close = ")" + s_.substr(j + 1, open - j - 1) + "\"";
        std::size_t end = s_.find(close, open);
        i_ = end == std::string::npos ? s_.size() : end + close.size();
        t->kind = Token::kString;
        return true;
      }
      i_ = j;
      return true;
    }
    if (c == '"' || c == '\'') {
      std::size_t j = i_ + 1;
      while (j < s_.size() && s_[j] != c && s_[j] != '\n')
        j += s_[j] == '\\' ? 2 : 1;
      t->kind = c == '"' ? Token::kString : Token::kOther;
      t->text = s_.substr(i_, j + 1 - i_);
      i_ = j + 1;
      return true;
    }
    if (c >= '0' && c <= '9') {
      std::size_t j = i_;
      while (j < s_.size() && (ident_char(s_[j]) || s_[j] == '.' || s_[j] == '\'' ||
                               ((s_[j] == '+' || s_[j] == '-') && (s_[j - 1] == 'e' || s_[j - 1] == 'E' ||
                                                                   s_[j - 1] == 'p' || s_[j - 1] == 'P'))))
        j++;
      t->kind = Token::kOther;
      t->text = s_.substr(i_, j - i_);
      i_ = j;
      return true;
    }
    t->kind = Token::kPunct;
    t->text = std::string(1, c);
    if (c == ':' && i_ + 1 < s_.size() && s_[i_ + 1] == ':')
      t->text = "::";
    i_ += t->text.size();
    return true;
  }

  const std::string &s_;
  std::size_t i_ = 0;
};

bool one_of(const std::string &s, const char *const *list, std::size_t n) {
  for (std::size_t i = 0; i < n; i++)
    if (s == list[i])
      return true;
  return false;
}

struct Definition {
  std::string name;
  bool kernel;
};

// At a '{' in a scope that holds declarations (file, namespace, class, extern "C" block), the
// tokens since the last ';', '{' or '}' of that scope say what the braces open.
enum class Opens { kFunction, kScope, kOther };

Opens classify(const std::vector<Token> &t, std::size_t from, std::size_t brace, bool in_extern_c, Definition *def) {
  // The first name followed by a parenthesised group that is not an attribute or the like.
  int depth = 0;
  for (std::size_t i = from; i + 1 < brace; i++) {
    if (t[i].text == "(")
      depth++;
    else if (t[i].text == ")")
      depth--;
    if (depth == 0 && t[i].kind == Token::kIdent && t[i + 1].text == "(" &&
        !one_of(t[i].text, kNotFunctions, sizeof kNotFunctions / sizeof *kNotFunctions)) {
      bool global = false, extern_c = in_extern_c;
      for (std::size_t j = from; j < i; j++) {
        global |= t[j].text == "__global__";
        extern_c |= t[j].text == "extern" && j + 1 < i && t[j + 1].text == "\"C\"";
      }
      def->name = t[i].text;
      def->kernel = global && extern_c;
      return Opens::kFunction;
    }
  }
  if (brace == from)
    return Opens::kOther;
  const std::string &prev = t[brace - 1].text;
  if (prev == "\"C\"" || prev == "namespace")
    return Opens::kScope;
  for (std::size_t i = from; i < brace; i++)
    if (t[i].text == "namespace" || t[i].text == "struct" || t[i].text == "class" || t[i].text == "union")
      return t[i].text == "namespace" || i + 1 == brace || t[i + 1].kind == Token::kIdent ? Opens::kScope
                                                                                          : Opens::kOther;
  return Opens::kOther;
}

// The bytes of one static __shared__ declaration starting at t[i] ("__shared__"):
// [__align__(n)] type name[d0][d1]...; 0 when it is not of that form (tlc prints only that
// form; a hand-written test may use others, which then do not count).
std::size_t shared_bytes(const std::vector<Token> &t, std::size_t i, std::size_t end) {
  static const std::map<std::string, std::size_t> sizes = {
      {"char", 1}, {"short", 2}, {"int", 4}, {"unsigned", 4}, {"float", 4}, {"double", 8}, {"long", 8},
      {"int64_t", 8}, {"uint64_t", 8}, {"int32_t", 4}, {"uint32_t", 4}, {"uint16_t", 2}, {"int16_t", 2},
      {"uint8_t", 1}, {"int8_t", 1}, {"float2", 8}, {"float4", 16}, {"int4", 16}, {"uint4", 16}};
  std::size_t element = 0;
  for (i++; i < end && t[i].text != ";"; i++) {
    if (t[i].text == "__align__") {   // skip its parenthesised argument
      while (i < end && t[i].text != ")")
        i++;
      continue;
    }
    if (t[i].kind != Token::kIdent)
      return 0;
    auto size = sizes.find(t[i].text);
    if (size != sizes.end()) {   // "unsigned short" is a short: the last type word decides
      element = t[i].text == "unsigned" && element ? element : size->second;
      continue;
    }
    if (i + 1 >= end || t[i + 1].text != "[" || !element)
      return 0;
    std::size_t bytes = element;
    for (i++; i + 2 < end && t[i].text == "[" && t[i + 2].text == "]"; i += 3) {
      const std::string &dim = t[i + 1].text;   // a literal; a name (a macro) does not count
      if (dim.empty() || dim.find_first_not_of("0123456789") != std::string::npos)
        return 0;
      bytes *= std::stoull(dim);
    }
    return bytes;
  }
  return 0;
}

}  // namespace

std::vector<KernelInfo> scan_kernels(const std::string &text) {
  std::map<std::string, std::set<std::string>> uses;   // function or macro -> names in its body
  std::vector<Token> t = Lexer(text).run(&uses);
  std::vector<std::string> kernels;
  std::set<std::string> seen;
  std::map<std::string, std::size_t> shared;   // kernel -> its static shared memory
  // Scopes that hold declarations; each entry says whether it is an extern "C" block.
  std::vector<bool> scopes{false};
  std::size_t from = 0;
  bool balanced = true;
  for (std::size_t i = 0; i < t.size(); i++) {
    const std::string &x = t[i].text;
    if (x == ";") {
      from = i + 1;
    } else if (x == "}") {
      if (scopes.size() == 1) {
        balanced = false;
        break;
      }
      scopes.pop_back();
      from = i + 1;
    } else if (x == "{") {
      Definition def;
      Opens what = classify(t, from, i, scopes.back(), &def);
      if (what == Opens::kScope) {
        scopes.push_back(scopes.back() || (i > 0 && t[i - 1].text == "\"C\""));
        from = i + 1;
        continue;
      }
      // A function body or an initializer: skip to its closing brace, collecting names.
      std::set<std::string> *names = what == Opens::kFunction ? &uses[def.name] : nullptr;
      int depth = 0;
      std::size_t j = i;
      for (; j < t.size(); j++) {
        if (t[j].text == "{")
          depth++;
        else if (t[j].text == "}" && --depth == 0)
          break;
        else if (names && t[j].kind == Token::kIdent)
          names->insert(t[j].text);
        if (what == Opens::kFunction && t[j].text == "__shared__")
          shared[def.name] += shared_bytes(t, j, t.size());
      }
      if (j == t.size()) {
        balanced = false;
        break;
      }
      if (what == Opens::kFunction && def.kernel && seen.insert(def.name).second)
        kernels.push_back(def.name);
      i = j;
      from = j + 1;
    }
  }
  if (scopes.size() != 1)
    balanced = false;

  // Which names can reach a synchronising operation, to a fixed point over the call graph.
  std::set<std::string> reaches(std::begin(kSynchronising), std::end(kSynchronising));
  for (bool changed = true; changed;) {
    changed = false;
    for (const auto &[name, body] : uses) {
      if (reaches.count(name))
        continue;
      for (const std::string &n : body)
        if (reaches.count(n)) {
          reaches.insert(name);
          changed = true;
          break;
        }
    }
  }
  std::vector<KernelInfo> out;
  for (const std::string &k : kernels)
    out.push_back({k, !balanced || reaches.count(k) > 0, shared[k]});
  return out;
}

}  // namespace emu
