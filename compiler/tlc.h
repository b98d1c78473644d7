// tlc.h: the compiler front end's types and functions, one section per file.
//
// Data flows one way: source text -> tokens (lex.c) -> AST (parse.c) -> values and
// the graph IR (eval.c, elab.c, ops.c) -> the experiment as a typed recipe (recipe.c) ->
// the training step (train.c, autodiff.c) -> its passes (fusion.c, schedule.c) -> the
// memory plan (plan.c) -> printers (print.c, stats.c). Everything the front end allocates
// lives in one arena that is freed when the compiler exits.
#ifndef TLC_H
#define TLC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base.h"

typedef struct Source Source;
typedef struct Token Token;
typedef struct Expr Expr;
typedef struct Stmt Stmt;
typedef struct Decl Decl;
typedef struct Program Program;
typedef struct Value Value;
typedef struct Node Node;
typedef struct Param Param;
typedef struct Graph Graph;

// Limits that turn hostile input into a diagnostic instead of a crash or a hang.
enum {
  MAX_NESTING = 200,        // parser recursion and block-call depth
  MAX_NODES = 100000,       // graph nodes after elaboration (EfficientNet-B7 has ~1,300)
  MAX_LIST = 1000000,       // elements of one list value
  MAX_IMPORTS = 256,        // files in one compilation
  MAX_DIM = 1 << 30,        // one tensor dimension
  // Steps of one evaluation: expressions evaluated, list elements made or compared, repeat
  // iterations. The zoo's largest model takes a few thousand; a file that needs more than
  // this is stopped, so that any input ends within seconds and a few hundred MB.
  MAX_EVAL_STEPS = 4000000,
};

//
// diag.c: positioned diagnostics
//
struct Source {
  const char *path;     // as given by the user, used in messages
  const char *text;     // NUL-terminated contents
  size_t len;
};

typedef struct Span {
  const Source *src;    // NULL for spans that have no source text
  uint32_t off;         // byte offset of the first character
  uint32_t len;         // length in bytes (at least 1 for the caret)
} Span;

// A chain of "in block X called from here" notes printed under an error.
typedef struct Note {
  const struct Note *outer;
  Span span;
  const char *what;
} Note;

void diag_set_notes(const Note *notes);
_Noreturn void error_at(Span span, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void warn_at(Span span, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
Span span_join(Span a, Span b);

//
// lex.c: tokens
//
typedef enum {
  TK_EOF, TK_IDENT, TK_INT, TK_FLOAT, TK_STRING, TK_KEYWORD, TK_PUNCT,
} TokenKind;

struct Token {
  TokenKind kind;
  Span span;
  const char *text;     // identifier, keyword or punctuator spelling; string contents
  int64_t ival;         // TK_INT
  double fval;          // TK_FLOAT
};

// Returns the tokens of src, ending with TK_EOF; *count excludes the EOF.
Token *lex(Arena *a, const Source *src, size_t start, int *count);
const char *token_describe(Arena *a, const Token *t);

//
// parse.c: the AST
//
typedef enum {
  EX_INT, EX_FLOAT, EX_BOOL, EX_STRING, EX_NONE, EX_NAME, EX_REF, EX_LIST, EX_COMPREHENSION,
  EX_UNARY, EX_BINARY, EX_TERNARY, EX_INDEX, EX_SLICE, EX_FIELD, EX_CALL,
} ExprKind;

typedef struct Arg {
  const char *name;     // NULL for a positional argument
  Span name_span;
  Expr *value;
} Arg;

struct Expr {
  ExprKind kind;
  Span span;
  int64_t ival;         // EX_INT, EX_BOOL
  double fval;          // EX_FLOAT
  const char *name;     // EX_NAME, EX_REF, EX_FIELD, EX_CALL callee, EX_STRING, operator
  Expr *a, *b, *c;      // operands; EX_COMPREHENSION: a = element, b = list
  Expr **items;         // EX_LIST
  int nitems;
  Arg *args;            // EX_CALL
  int nargs;
};

typedef enum { ST_LAYER, ST_SEQ, ST_LET, ST_IF, ST_REPEAT } StmtKind;

typedef struct Body {
  Stmt **stmts;
  int n;
  Span span;
} Body;

struct Stmt {
  StmtKind kind;
  Span span;
  const char *label;    // "conv1", "0"; NULL when the statement is unlabelled
  Span label_span;
  Expr *call;           // ST_LAYER: EX_CALL or EX_NAME; ST_SEQ: optional input args (EX_CALL)
  const char *var;      // ST_LET name, ST_REPEAT index variable (may be NULL)
  Expr *value;          // ST_LET value, ST_IF condition, ST_REPEAT count
  Body body;            // ST_SEQ, ST_IF then-branch, ST_REPEAT
  Body else_body;       // ST_IF
  bool has_else;
};

typedef enum { DECL_IMPORT, DECL_LET, DECL_BLOCK, DECL_MODEL, DECL_EXPERIMENT } DeclKind;

typedef struct ParamDecl {
  const char *name;
  Span span;
  Expr *default_value;  // NULL when the argument is required
} ParamDecl;

typedef struct Setting {
  const char *name;
  Span span;
  Expr *value;
  bool is_let;          // a user variable, not one of the known settings
} Setting;

struct Decl {
  DeclKind kind;
  Span span;
  const char *name;     // block/model/let name; import path
  Span name_span;
  ParamDecl *params;
  int nparams;
  Body body;
  Expr *value;          // DECL_LET; DECL_MODEL defined as "= block(...)" (else NULL)
  Setting *settings;    // DECL_EXPERIMENT
  int nsettings;
  const Program *home;  // the file it was declared in
  Value *let_value;     // DECL_LET: its value once evaluated (every use shares it)
  bool evaluating;      // DECL_LET: being evaluated: a use now is a cycle
};

struct Program {
  const Source *src;
  Decl **decls;
  int n;
};

Program *parse_source(Arena *a, const Source *src);
Expr *parse_expr_text(Arena *a, const Source *src, size_t start);  // a --set value

//
// load.c: reading files and resolving imports
//
typedef struct Module {
  Program **files;      // the main file first, then imports in load order
  int nfiles;
  Decl **decls;         // every block, model and let visible to the main file
  int ndecls;
  NameMap by_name;      // name -> index into decls
  const Decl *experiment; // the main file's experiment section or NULL
} Module;

const Source *source_read(Arena *a, const char *path, Span from);
Module *load_module(Arena *a, const char *path, const char **include_dirs, int ninclude);
Decl *module_find(const Module *m, const char *name);

//
// eval.c: compile-time values
//
typedef enum { V_NONE, V_INT, V_FLOAT, V_BOOL, V_STRING, V_LIST, V_TENSOR, V_RECORD } ValueKind;

typedef struct Field {
  const char *name;     // NULL for positional
  Value *value;
  Span span;            // of the argument's name, or of the value when positional
} Field;

struct Value {
  ValueKind kind;
  Span span;            // where the value was written
  int64_t i;            // V_INT, V_BOOL
  double f;             // V_FLOAT
  const char *s;        // V_STRING; V_RECORD constructor name
  Value **items;        // V_LIST
  int n;
  Node *tensor;         // V_TENSOR
  Field *fields;        // V_RECORD: sgd(lr = 0.1) in an experiment
  int nfields;
};

typedef struct Binding {
  const char *name;
  Value *value;
  Node *node;           // for @label references: the layer's output
} Binding;

typedef struct Env {
  const struct Env *outer;
  Binding *vars;
  int nvars, cap;
  NameMap index;        // name -> its latest binding in vars
  Arena *arena;
  const Module *module;
  bool records;         // unknown calls become records (experiment sections)
  // Settings evaluated on demand (experiment sections); NULL elsewhere.
  Value *(*lookup_setting)(void *ctx, const char *name, Span use);
  void *setting_ctx;
  struct EvalBudget *budget;   // shared by every Env of one evaluation
} Env;

// What one evaluation (elaboration, or the experiment section) may still do.
typedef struct EvalBudget {
  int depth;            // nesting of the expressions being evaluated
  int64_t steps;        // steps taken (MAX_EVAL_STEPS at most)
} EvalBudget;

Value *eval(Env *env, const Expr *e);
// Charges n steps to env's evaluation; a file that would take more than MAX_EVAL_STEPS
// stops with an error at span.
void eval_spend(Env *env, int64_t n, Span span);
Value *value_new(Arena *a, ValueKind kind, Span span);
void env_bind(Env *env, const char *name, Value *v, Node *node);
const Binding *env_find(const Env *env, const char *name);
const char *value_kind_name(ValueKind k);
const char *value_str(Arena *a, const Value *v);
int64_t value_int(const Value *v, const char *what);
double value_number(const Value *v, const char *what);
bool value_bool(const Value *v, const char *what);

// The arguments a layer or a setting's record takes, checked in one place.
// ARG_SIZE: an integer, or [height, width] of integers (torchvision's size arguments);
// ARG_INT_OR_STRING: an integer in range, or a name the caller checks.
typedef enum { ARG_INT, ARG_FLOAT, ARG_BOOL, ARG_STRING, ARG_NUMBERS, ARG_STRINGS, ARG_SIZE, ARG_INT_OR_STRING } ArgType;
typedef struct ArgSpec {
  const char *name;
  ArgType type;
  bool required;
  double min, max;      // inclusive range of a number (of each of ARG_NUMBERS); max <= min: no upper bound
} ArgSpec;

enum { MAX_ARGS = 8 };
typedef struct BoundArgs {
  const Value *v[MAX_ARGS];   // by position in the spec; NULL when not given
} BoundArgs;

// Matches positional and named args to spec; what names the callee in messages.
void args_bind(Arena *a, const char *what, const ArgSpec *spec, int nspec, const Field *args, int nargs, Span span,
               BoundArgs *out);
int64_t arg_int(const BoundArgs *b, int i, int64_t dflt);
double arg_float(const BoundArgs *b, int i, double dflt);
bool arg_bool(const BoundArgs *b, int i, bool dflt);

//
// ops.c: the layer table (arguments, shapes, parameters, cost)
//
typedef enum {
#define OP(kind, name, arity, kernel, grad) OP_##kind,
#include "ops.def"
#undef OP
  OP_COUNT
} OpKind;

// A tensor's shape. Activations are [N,C,H,W] (rank 4) or [N,F] (rank 2); parameters use
// d[0..rank) as PyTorch orders them. Unused trailing sizes are 1, so the element count
// is always n*c*h*w.
typedef struct Shape {
  int rank;
  union {
    struct {
      int64_t n, c, h, w;
    };
    int64_t d[4];
  };
} Shape;

typedef struct ConvAttrs { int64_t out, kernel, stride, pad, groups, dilation; bool bias; } ConvAttrs;
typedef struct PoolAttrs { int64_t kernel, stride, pad; } PoolAttrs;
typedef struct BatchNormAttrs { double eps, momentum; } BatchNormAttrs;
typedef struct LinearAttrs { int64_t out; bool bias; } LinearAttrs;
typedef struct DropAttrs { double p; int64_t salt; } DropAttrs;   // salt: which mask stream
typedef struct LossAttrs { double label_smoothing; } LossAttrs;
typedef struct OptAttrs {
  double lr, momentum, weight_decay, beta1, beta2, eps;
  bool nesterov, decoupled;   // decoupled: AdamW's weight decay
} OptAttrs;

struct Param {
  const char *name;     // torchvision state_dict key: "layer1.0.conv1.weight"
  int dims;             // number of dimensions as PyTorch sees them (0 for a scalar)
  int64_t dim[4];
  bool buffer;          // running statistics: saved and loaded, never trained
  bool is_int;          // int64 (num_batches_tracked)
  bool frozen;
  const Node *owner;
};

// Tensor inputs of a node, fused ones included: with its output, a kernel has at most 8
// buffers (the runtime's TlcKernelCall).
enum { MAX_INPUTS = 7 };

// What fusion.c merged into a node's kernel, its operands named. Each operand is also in
// the node's in[], which lists every buffer the kernel reads; the kernel finds it there by
// the pointer. All zero in the plain step.
typedef struct Fused {
  OpKind activation;    // relu, relu6 or sigmoid, applied as the output is stored; OP_INPUT (0): none
  Node *residual;       // added before the activation: a residual connection (bn_apply, conv2d),
                        // or the gradient already summed (conv2d_dx, bn_dx, bn_dx_running)
  struct {
    Node *stats, *gamma, *beta;
  } bn;                 // conv2d: a batchnorm on running statistics applied to the output
  int64_t stats_rows;   // conv2d: also writes the batchnorm statistics of its output, per
                        // chunk of this many rows, after the output (see conv_stats_chunks); 0: no
  OpKind dy_activation; // bn_dparams, bn_dx, bn_dx_running: dy is first taken through the gradient
  Node *dy_output;      // of this activation, computed from its output dy_output, or, for relu
  Node *dy_gamma;       // and relu6 where x is read anyway (bn_dparams, bn_dx), from the output
  Node *dy_beta;        // before it, recomputed from x, the statistics, dy_gamma and dy_beta
} Fused;

struct Node {
  OpKind op;
  int id;
  const char *name;     // dotted layer path, "" for the graph input
  Span span;            // the statement that made it
  Node *in[MAX_INPUTS];
  int nin;
  Shape shape;
  union {
    ConvAttrs conv;
    PoolAttrs pool;
    BatchNormAttrs bn;
    LinearAttrs linear;
    DropAttrs drop;
    LossAttrs loss;
    OptAttrs opt;
    int64_t view_offset;
  } attr;
  Fused fused;          // what fusion.c merged into its kernel
  bool trains;          // a trainable parameter lies at or below: it gets a gradient
  bool is_int;          // int64 elements (labels, seed, num_batches_tracked); else float
  bool writes_inputs;   // updates some of its inputs in place (optimizer, running statistics)
  const Node *forward;  // a training-step node: the model layer it belongs to
  const Param *param;   // OP_PARAM, OP_STATE
  Param **params;
  int nparams;
  bool frozen;          // every parameter of this node is frozen
};

typedef struct OpInfo {
  const char *name;
  int arity;            // tensor inputs
} OpInfo;

Shape shape4(int64_t n, int64_t c, int64_t h, int64_t w);
Shape shape2(int64_t n, int64_t f);
int64_t shape_elems(Shape s);
// The elements of a node's buffer: its shape's, plus the per-chunk statistics a convolution
// with stats_rows stores after its output, or the partial sums of a two-pass reduction.
int64_t node_elems(const Node *n);
int64_t conv_stats_chunks(const Node *n);   // ceil(output rows / stats_rows)
// On the GPU, bn_stats (unless merged from a convolution's chunks), bn_dparams and bias_grad
// reduce each channel in chunks of REDUCTION_CHUNK elements, and store the chunks' partial
// sums after their output, [chunks][results][C] (results: 2 for batchnorm's [2,C], 1 for a
// bias gradient's [C]), for a second kernel to add up (codegen/kernels_norm.c). The CPU's
// buffer has the room too and leaves it alone.
enum { REDUCTION_CHUNK = 2048 };
int64_t reduction_chunks(const Node *n);          // the chunks of a channel, or 0 for other nodes
int reduction_results(const Node *n);             // the sums a chunk stores per channel
int64_t reduction_partial_elems(const Node *n);   // the partial sums' elements after the output
// node_elems but for those partial sums: what both devices' kernels write, and checks compare.
int64_t node_result_elems(const Node *n);
// How the CPU computes a convolution, fixed per layer at compile time (codegen/conv_cpu.h;
// --stats prints it): grouped and depthwise ones directly, plane by plane; the others as
// packed matrix products that gather their operands from the tensors, storing no patch
// matrix: a 1x1 one on the activation as it is; on images of at most 4 output positions
// (2x2, 1x1), where more than half the taps of a 3x3 kernel fall in the padding, with the
// rows ordered by position, then image, so that the taps outside are skipped; else by
// image, then position. (At 4x4, a third of the taps fall outside, and skipping them costs
// more than it saves: the rows of one position are strided in memory.)
bool conv_rows_by_position(const ConvAttrs *c, Shape y);   // y: the convolution's output
bool conv_by_position(const Node *conv);
const char *conv_algorithm(const Node *conv);
// The CPU's weight gradient of conv, one of three forms (codegen/kernels_conv_cpu_dw*.c):
// dot products along the positions (conv_dw_dots: a 1x1 convolution without stride or
// padding, on images of at least 196 positions); a product with the patches as A, C[(ci,
// tap), co] (conv_dw_by_patch: rows by image, at most 128 output channels and at least as
// many (ci, tap)), whose tasks compute up to CONV_DW_PATCH_ROWS rows of C so that each copies
// dy's block for as many as fit in L2; else a product with dy as A, C[co, (ci, tap)].
bool conv_dw_dots(const Node *conv);
bool conv_dw_by_patch(const Node *conv);
// Whether the CPU's forward pass and weight gradient of a strided convolution (groups == 1,
// kernel > 1, rows by image) read its input split by stride phase (conv2d_phases,
// compiler/schedule.c): where its output is its input's size divided by the stride (3x3
// with padding 1, the 7x7 stem with padding 3, on even sizes), a tap reads one phase shifted
// by whole positions, so the products gather a plane at a time and not s floats apart.
bool conv_reads_phases(const Node *conv);
// The CPU's gradients of a depthwise convolution computed on its planes copied padded into
// scratch, vectorised along the positions (codegen/kernels_conv_cpu_depthwise.c), where
// that is faster than the direct loops: the input gradient where a stride phase of dx has
// at least 14 x 14 positions, the weight gradient where dy has, at stride 2 only from
// planes at least 56 wide; kernels up to 7x7, strides up to 4, on planes of at most 2^18 positions
// (the scratch lives on a thread's stack).
bool conv_depthwise_dx_padded(const Node *conv);
bool conv_depthwise_dw_padded(const Node *conv);
enum { CONV_DW_PATCH_ROWS = 640 };
Shape shape_of_param(const Param *p);

extern const OpInfo op_info[OP_COUNT];
OpKind op_lookup(const char *name);     // OP_COUNT when not an op
// Builds the node named name for a call of op on in[]: checks the other arguments,
// infers the output shape and creates the parameters.
Node *op_build(Arena *a, OpKind op, const char *name, Node **in, int nin, const Field *args, int nargs,
               Span span);
int64_t node_macs(const Node *n);       // forward multiply-accumulates per image
int64_t node_flops(const Node *n);      // floating-point operations of a step node, whole batch
const char *shape_str(Arena *a, Shape s);
const char *node_describe(Arena *a, const Node *n);

//
// elab.c: blocks, repeats and scopes expanded into the graph IR
//
struct Graph {
  const char *model;    // the model's name
  Node *images, *labels, *logits, *loss;   // training-step graphs only
  Node *features;       // the feature cache's boundary (features.c), or NULL
  Node **nodes;         // topological order, nodes[0] is the input
  int n, cap;
  Param **params;       // in state_dict order
  int nparams, pcap;
  Node *output;
  int64_t batch;
  Arena *arena;
};

// Elaborates model_call (a V_RECORD naming a model and its arguments) at batch size batch.
Graph *elaborate(Arena *a, const Module *m, const Value *model_call, int64_t batch);
// Whether the layer called name is path or lies inside the scope path ("layer4" holds
// layer4.1.conv2, not layer40).
bool layer_in(const char *name, const char *path);
// The node whose dotted name is path or, for a scope, the first node inside it (the last
// with last); NULL if none.
const Node *graph_find_layer(const Graph *g, const char *path, bool last);

//
// recipe.c: the experiment section resolved once into typed values, and every check of it
//
typedef struct Override {
  const char *name;     // "epochs", "optimizer.lr"
  const char *text;     // the value as typed
} Override;

typedef enum { FREEZE_NONE, FREEZE_ALL, FREEZE_BEFORE, FREEZE_THROUGH, FREEZE_LIST, FREEZE_ALL_EXCEPT } FreezeKind;
typedef enum { FROZEN_BN_RUNNING, FROZEN_BN_BATCH } FrozenBn;
typedef enum { DATA_IDX, DATA_IMAGE_FOLDER, DATA_CIFAR10, DATA_FLOWERS102 } DataFormat;
typedef enum {
  TF_RESIZE, TF_CENTER_CROP, TF_RANDOM_CROP, TF_RANDOM_RESIZED_CROP, TF_HFLIP, TF_VFLIP, TF_ROTATE, TF_COLOR_JITTER,
  TF_NORMALIZE, TF_GRAYSCALE_TO_RGB
} TransformKind;
typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptimizerKind;
typedef enum { SCHED_CONSTANT, SCHED_STEP, SCHED_MULTISTEP, SCHED_COSINE } ScheduleKind;
typedef enum { PRECISION_BF16, PRECISION_FP32 } Precision;

// What the runtime's TlcSchedule and TlcTransform have room for.
enum { MAX_MILESTONES = 16, MAX_CHANNELS = 4 };

// A layer the recipe names (freeze, lr_mult): a dotted path, matching a layer or every
// layer of a scope ("layer4" matches layer4.1.conv2).
typedef struct LayerName {
  const char *path;
  Span span;            // where it is written: an error about it points there
} LayerName;

typedef struct Freeze {
  FreezeKind kind;
  LayerName *layers;    // BEFORE, THROUGH: one; LIST, ALL_EXCEPT: those listed
  int nlayers;
} Freeze;

typedef struct DataSource {
  DataFormat format;
  const char *dir;          // the default of the trainer's --data
  int64_t val_count;        // idx: the last N training images; cifar10: the dev split
  int dev_batch;            // cifar10: data_batch_N (1..5) is the dev split, not trained on; 0: none
  double val_split;         // image_folder without val/: the fraction of each class held out
  const char **class_names; // idx(names = [...]): the data set's classes, which IDX files do not name; NULL: none
  int nclass_names;
  Span class_names_span;
  int64_t *subset_classes;  // the classes kept, relabelled 0, 1, ... in this order; NULL: all
  int nsubset_classes;
  int64_t per_class;        // at most this many training images per class; 0: all
} DataSource;

// One transform with torchvision's defaults filled in; a kind reads only its own fields.
typedef struct Transform {
  TransformKind kind;
  Span span;
  bool random;              // draws at random: an image differs from epoch to epoch
  int64_t size;             // resize (shorter side), the crops
  int64_t height, width;    // resize([height, width]): exactly that, aspect ratio not kept (size 0)
  int64_t pad;              // random_crop
  double scale[2], ratio[2];   // random_resized_crop: [low, high]
  double p;                 // hflip, vflip
  double degrees;           // rotate
  double jitter[4];         // color_jitter: brightness, contrast, saturation, hue
  double mean[MAX_CHANNELS], std[MAX_CHANNELS];   // normalize: per channel, the last repeated
  int nmean, nstd;          // how many were written; 0: ImageNet's (three)
} Transform;

typedef struct TransformList {
  Transform *items;         // in the order they run; normalize, if any, last
  int n;
} TransformList;

typedef struct Schedule {
  ScheduleKind kind;
  int64_t step_size;        // STEP
  int64_t milestones[MAX_MILESTONES];   // MULTISTEP: epochs
  int nmilestones;
  double gamma;             // STEP, MULTISTEP
  double eta_min;           // COSINE
  int64_t warmup;           // epochs of linear warm-up; 0: none
} Schedule;

// A learning-rate group: the parameters of the layers under one name.
typedef struct LrGroup {
  LayerName layer;
  double factor;            // times the optimizer's learning rate
} LrGroup;

typedef struct Recipe {
  Value *model;             // V_RECORD: the model and its arguments, as elaborate() takes them
  int64_t classes;          // the setting, else (after recipe_bind) the model's outputs; 0: unknown
  Span classes_span;        // where classes is set (src NULL: it is not)
  int64_t batch, epochs, seed;
  int64_t test_every;       // the test split evaluated every N epochs too; 0: only at the end
  const char *weights;      // as written, or NULL for none
  const char *weights_path; // the same resolved against the directory of the file that names it
  Freeze freeze;
  FrozenBn frozen_bn;
  DataSource data;
  TransformList train_transform, eval_transform;
  OptimizerKind optimizer;
  OptAttrs opt;             // PyTorch's defaults filled in
  Schedule schedule;
  LrGroup *lr_mult;         // in order: the last group naming a parameter's layer sets its factor
  int nlr_mult;
  bool decay_bn_bias;       // batchnorm and bias parameters get weight decay
  double label_smoothing;
  Precision precision;      // GPU matrix products on bf16 tensor cores (fp32 accumulation), or fp32
} Recipe;

Recipe *recipe_load(Arena *a, const Module *m, const Override *ov, int nov);
bool recipe_is_setting(const char *name);   // a setting the experiment section may hold
// The checks that need the model graph (the layers named, classes, normalize's channels),
// then marks the frozen layers. Every mode runs it right after elaboration.
void recipe_bind(Arena *a, Recipe *r, Graph *g);
// The resolved recipe, one `# setting = value` line each, defaults filled in.
void recipe_print(FILE *out, Arena *a, const Recipe *r);

//
// train.c, autodiff.c: the training step as a graph
//
// The plain step of a trainer, from the model graph: every layer its own node, parameters as
// tensors, batchnorm as statistics, application and the running-statistics update, the loss;
// when training, the backward pass (autodiff.c: gradients only where a trainable parameter
// lies below) and the optimizer updates. Without training, the evaluation forward pass:
// running statistics, no dropout. Nothing in it is fused.
Graph *step_build(Arena *a, const Graph *model, const Recipe *r, bool training);
// The step as a trainer runs it: the plain step, fused (fusion.c), then scheduled (schedule.c).
Graph *train_build(Arena *a, const Graph *model, const Recipe *r, bool training);

typedef struct StepBuilder {
  Arena *arena;
  Graph *g;             // the step being built
  const Recipe *recipe;
  bool training;
  Node **of_model;      // model node id -> the step node holding its output
  Node **grads;         // step node id -> its gradient (autodiff.c)
  int ngrads;
  Node *seed, *lr;
} StepBuilder;

Node *step_node(StepBuilder *b, OpKind op, Shape shape, const Node *forward, int nin, ...);
// Adds the backward pass of the step's forward nodes, seeded by dlogits.
void autodiff(StepBuilder *b, Node *logits, Node *dlogits);
// The gradient of a node once autodiff ran (NULL when it has none).
Node *step_grad(const StepBuilder *b, const Node *n);

//
// fusion.c: nodes merged into the kernels of others
//
// Rewrites a plain step (step_build) into fused groups, each node's merged work and operands
// named in its Fused: activations, folded and residual batchnorms, batchnorm statistics in
// the convolution before, activation gradients taken in the batchnorm gradients, gradient
// sums (docs/fusion.md). A fused node may then read a tensor made after it: schedule_step
// orders the step.
void fuse_step(Arena *a, Graph *g);

//
// schedule.c: the order of the step's kernels, how a weight gradient is spread over threads
// and how an input gradient's weights are laid out
//
// Splits large weight gradients into chunks summed apart, transposes the weights of each
// input gradient of a convolution with groups == 1 into [CI,KH,KW,CO] (conv2d_weight_t, the
// input gradient's last input), splits a strided convolution's input by stride phase for
// its forward pass and weight gradient (conv2d_phases, where conv_reads_phases), then orders the step so that every node comes after what it
// reads, keeping the given order wherever it already does.
void schedule_step(Arena *a, Graph *g);

//
// plan.c: one static arena for a trainer, with liveness-based reuse
//
// The arena holds, in order: the state (parameters, buffers, optimizer state: what a
// checkpoint saves), the step's inputs (images, labels, seed, lr), what the host reads (the
// loss, the logits, the cached features: outputs), then the activations of the training
// step or of the evaluation pass (never both at once, so they share).
typedef struct MemPlan {
  int64_t *train_offset;    // per training-step node id: byte offset, or -1 (no storage)
  int64_t *eval_offset;     // per evaluation node id
  int64_t state_bytes, io_bytes, output_bytes, train_bytes, eval_bytes, total_bytes;
  bool bf16;                // the GPU's plan with bf16 activations
} MemPlan;

// bf16: the GPU's plan under precision "bf16" (storage.c's values in 2 bytes); the state, the
// step's inputs and what the host reads (value_read_by_host) are at the same offsets in both
// plans, so the host reads either device's arena alike.
MemPlan *plan_memory(Arena *a, const Graph *train, const Graph *eval, bool bf16);
int64_t node_bytes(const Node *n);

//
// storage.c: which values the GPU keeps in bf16 (precision "bf16")
//
// Activations and their gradients: not parameters, their gradients, optimizer state,
// batchnorm statistics, the loss, the logits nor the cached features. The CPU keeps all fp32.
bool value_bf16(const Graph *g, const Node *n);
bool value_read_by_host(const Graph *g, const Node *n);
// The bytes of an element of a node's buffer: node_bytes' 4 or 8, 2 where bf16 and value_bf16.
int value_elem_bytes(const Graph *g, const Node *n, bool bf16);
// A convolution's chunk statistics stored after its output (node_elems) stay fp32: with a bf16
// output they are apart (its kernels and bn_stats' have a buffer for them), from byte
// value_stats_offset of its buffer. value_bytes: the node's bytes in the arena.
bool value_stats_apart(const Graph *g, const Node *n, bool bf16);
int64_t value_stats_offset(const Graph *g, const Node *n, bool bf16);
int64_t value_bytes(const Graph *g, const Node *n, bool bf16);

//
// print.c, stats.c: what --emit=ir, --emit=params and --stats show
//
void print_ir(FILE *out, Arena *a, const Graph *g);
void print_params(FILE *out, const Graph *g);
void print_stats(FILE *out, const Graph *g, const MemPlan *plan, const MemPlan *gpu);
// Each convolution of the training step, its CPU algorithm and the bytes it takes beyond
// its tensors (its weight gradient's partial sums).
void print_conv_stats(FILE *out, Arena *a, const Graph *train);

//
// features.c: training from cached features of a frozen, deterministic prefix
//
// The id of the training-step node whose value is the same for an image at every step
// and from which everything trainable is computed, or -1: the images' transforms draw
// nothing at random and every kernel up to that node is frozen and per-image (no dropout,
// no batch statistics). Its kernels, and those before it, form the prefix.
int feature_boundary(Arena *a, const Graph *train, const Recipe *r);


#endif
