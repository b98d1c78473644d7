// tlcrt.h: libtlcrt, the runtime every generated trainer links against. It holds what
// is the same for every experiment: command-line flags, data sets, checkpoints, weights in
// and out (safetensors, .npy), metrics, the CPU thread pool and the random number generator. Nothing here interprets a graph.
//
// Errors: functions return 0 on success and nonzero on failure, with a message in the
// caller's TlcError (TVM's C runtime style). Only the generated main() exits.
#ifndef TLCRT_H
#define TLCRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct TlcError {
  char msg[1024];       // "what failed and where", ready to print after "error: "
} TlcError;

// Formats a message into err and returns -1, so callers can write `return tlc_fail(...)`.
int tlc_fail(TlcError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

//
// rng.c: a small deterministic generator (same seed, same stream, on every machine)
//
typedef struct TlcRng {
  uint64_t s[2];
} TlcRng;

void tlc_rng_seed(TlcRng *r, uint64_t seed);
uint64_t tlc_rng_next(TlcRng *r);
float tlc_rng_uniform(TlcRng *r);         // [0, 1)
float tlc_rng_normal(TlcRng *r);          // mean 0, variance 1
void tlc_rng_shuffle(TlcRng *r, int32_t *items, int64_t n);
uint64_t tlc_rng_below(TlcRng *r, uint64_t bound);  // [0, bound), unbiased; 0 if bound is 0

//
// transform.c: image transforms
//
// Each transform matches torchvision 0.14 on a PIL image (Pillow 9.4), pixel for pixel where
// the arithmetic allows; runtime/README.md states what each matches and the tolerance measured.

// An 8-bit image, rows top to bottom, pixels interleaved (HWC), 1 (gray) or 3 (RGB) channels.
typedef struct TlcImage {
  int32_t width, height, channels;
  uint8_t *pixels;      // width * height * channels bytes
} TlcImage;

typedef enum {
  TLC_TF_RESIZE,              // shorter side to `size`, aspect kept (or, size 0, to height x width), bilinear
                              // with antialiasing as PIL
  TLC_TF_CENTER_CROP,         // size x size from the centre
  TLC_TF_RANDOM_CROP,         // size x size at a random place after zero padding of `pad` on each side
  TLC_TF_RANDOM_RESIZED_CROP, // torchvision's RandomResizedCrop(size, scale, ratio)
  TLC_TF_HFLIP, TLC_TF_VFLIP, // with probability p
  TLC_TF_ROTATE,              // by an angle uniform in [-degrees, degrees], nearest, zero fill, as torchvision
  TLC_TF_COLOR_JITTER,        // torchvision's ColorJitter(brightness, contrast, saturation, hue), random order
  TLC_TF_GRAYSCALE_TO_RGB,    // 1 channel to 3 equal ones (no-op on RGB)
  TLC_TF_NORMALIZE,           // last: (pixel / 255 - mean[c]) / std[c]
} TlcTransformKind;

typedef struct TlcTransform {
  TlcTransformKind kind;
  int32_t size;               // RESIZE, CENTER_CROP, RANDOM_CROP, RANDOM_RESIZED_CROP
  int32_t height, width;      // RESIZE when size is 0: exactly this, as torchvision's Resize((h, w))
  int32_t pad;                // RANDOM_CROP
  float p;                    // HFLIP, VFLIP
  float scale[2], ratio[2];   // RANDOM_RESIZED_CROP
  float degrees;              // ROTATE
  float brightness, contrast, saturation, hue;  // COLOR_JITTER
  float mean[4], std[4];      // NORMALIZE, per channel
} TlcTransform;

// Scratch images one thread reuses between calls (grown on demand, freed by tlc_transform_scratch_free).
typedef struct TlcTransformScratch { TlcImage a, b; size_t cap_a, cap_b; } TlcTransformScratch;
void tlc_transform_scratch_free(TlcTransformScratch *s);

// Runs tf[0..n) in order on src (which is not modified) and writes the result as floats, channel-major
// (CHW), into out[channels * height * width]. Random choices come from rng only, so the same rng state gives
// the same output on every machine. A NORMALIZE, if present, must be last; without one, pixels are scaled to
// [0, 1]. Fails with a clear message (naming the transform and both sizes) when an image is smaller than a crop
// or the final image is not channels x height x width.
int tlc_transform_run(const TlcTransform *tf, int n, const TlcImage *src, TlcRng *rng,
                      TlcTransformScratch *scratch, float *out, int channels, int height, int width,
                      TlcError *err);

// Checks a list once, before any image: known kinds, positive sizes, p in [0, 1], scale and
// ratio ranges (0 < lo <= hi), jitter amounts >= 0 with hue <= 0.5, a positive std, and
// NORMALIZE only last. tlc_transform_run checks the same on every call.
int tlc_transform_check(const TlcTransform *tf, int n, TlcError *err);

// The float each byte value 0..255 of each channel becomes: v / 255, then (x - mean) / std
// when tf ends with NORMALIZE, in float32 as torchvision's ToTensor and Normalize.
int tlc_transform_table(const TlcTransform *tf, int n, int32_t channels, float table[][256], TlcError *err);

// The largest image tf[0..n) makes from a width x height x channels input, in bytes (an upper
// bound for each of a thread's two scratch images; the loader reserves memory by it).
int64_t tlc_transform_largest_bytes(const TlcTransform *tf, int n, int32_t width, int32_t height, int32_t channels);

// The name a transform has in a .graph ("random_resized_crop"), for messages.
const char *tlc_transform_name(TlcTransformKind kind);

// The random choices of one transform for one image. tlc_transform_run is draw then apply;
// they are public so that tests can apply a transform with fixed choices (a given angle, given
// jitter factors, a given crop box) and compare it with PIL, and check the draws' statistics.
typedef struct TlcTransformDraw {
  int32_t top, left, height, width;  // crops: the box taken (RANDOM_CROP: in the padded image)
  bool flip;                         // HFLIP, VFLIP
  double angle;                      // ROTATE: degrees, counter-clockwise
  int32_t order[4];                  // COLOR_JITTER: the order of 0 brightness, 1 contrast,
                                     // 2 saturation, 3 hue
  float factor[4];                   // COLOR_JITTER: by that numbering; [3] is the hue shift
  bool enabled[4];                   // COLOR_JITTER: the amount was nonzero (else not applied)
} TlcTransformDraw;

// Draws what tf needs for an input of width x height, in torchvision's order of draws.
// Fails when the input is too small (a crop larger than the image or the padded image).
int tlc_transform_draw(const TlcTransform *tf, int32_t width, int32_t height, TlcRng *rng,
                       TlcTransformDraw *draw, TlcError *err);

// Applies tf with the given choices to src, writing dst (grown to *dst_cap bytes as needed).
// NORMALIZE is not an image operation and is refused here. src and dst must not overlap.
int tlc_transform_apply(const TlcTransform *tf, const TlcTransformDraw *draw, const TlcImage *src,
                        TlcImage *dst, size_t *dst_cap, TlcError *err);

//
// augment.c: one sample's transforms as the GPU's augment kernel takes them
//
// The decoded image's region [top, top + height) x [left, left + width) is resized to
// out_height x out_width (Pillow's filter; a copy when the sizes are equal). Batch pixel
// (y, x) is then, through the crops and flips after the rotation, pixel (y2, x2) =
// (after.ay + after.sy * y, after.ax + after.sx * x) of the rotated image; the rotation reads
// (ys, xs) = (floor((rotate[3] + rotate[4] x2 + rotate[5] y2) / 65536), floor((rotate[0] +
// rotate[1] x2 + rotate[2] y2) / 65536)); the crops and flips before it read resized pixel
// (before.ay + before.sy * ys, before.ax + before.sx * xs). Each step outside its image
// (rotated_height x rotated_width, then out_height x out_width) reads zero. Without a
// rotation, `after` and `rotate` are the identity.
typedef struct TlcAugmentMap { int64_t ay, sy, ax, sx; } TlcAugmentMap;
typedef struct TlcAugmentPlan {
  int32_t top, left, height, width;      // the region the resize reads
  int32_t out_height, out_width;         // the resized image
  TlcAugmentMap before, after;           // the crops and flips before and after the rotation
  int64_t rotate[6];                     // the rotation, 16.16 fixed point
  int32_t rotated_height, rotated_width; // the rotation's image (its input's size)
  int32_t channels;                      // the image's, or 3 after grayscale_to_rgb
  int32_t final_height, final_width;     // the image tf makes (the model's, when it fits)
  // Colour jitter, last of the image's transforms: its adjustments in order (0 brightness, 1
  // contrast, 2 saturation, 3 hue; -1 for one not drawn), factors by that number, and hue's
  // step added to H.
  int32_t jitter[4];
  float factor[3];
  int32_t hue_step;
} TlcAugmentPlan;

// NULL when the kernels can run tf[0..n), else why not (written into why).
const char *tlc_augment_unsupported(const TlcTransform *tf, int n, char *why, size_t len);
// Whether tf[0..n) has colour jitter (the batch then goes through the jitter kernels), and
// with a hue (they then read tables of Pillow's HSV conversions).
bool tlc_augment_jitters(const TlcTransform *tf, int n, bool *hue);
// Pillow's HSV of every RGB triple and RGB of every HSV triple (3 x 2^24 bytes each, indexed
// by (a * 256 + b) * 256 + c), for the jitter kernels.
void tlc_augment_hsv_tables(uint8_t *hsv, uint8_t *rgb);
// Draws img's choices from rng exactly as tlc_transform_run does; fails where it fails.
int tlc_augment_plan(const TlcTransform *tf, int n, const TlcImage *img, TlcRng *rng, TlcAugmentPlan *p,
                     TlcError *err);
// The int64 taps of a plan: the rows' entries, then the columns', stride_y and stride_x each.
int64_t tlc_augment_taps_size(const TlcAugmentPlan *p);
int tlc_augment_taps(const TlcAugmentPlan *p, int64_t *taps, int64_t *stride_y, int64_t *stride_x, TlcError *err);

// The building blocks, each as Pillow computes it, for the tests and for other callers.
// dst->width and dst->height give the output size; dst->pixels holds dst width * height *
// src channels bytes. PIL's two-pass bilinear filter with antialiasing (Image.resize, BILINEAR);
// fails only when memory for its weights runs out.
int tlc_image_resize(const TlcImage *src, TlcImage *dst, TlcError *err);
// Image.rotate(angle, NEAREST, expand=False, fillcolor=0): about the centre, counter-clockwise.
void tlc_image_rotate(const TlcImage *src, double degrees, TlcImage *dst);
// ImageEnhance.Brightness / Contrast / Color (saturation) and torchvision's adjust_hue, in place.
void tlc_image_brightness(TlcImage *img, float factor);
void tlc_image_contrast(TlcImage *img, float factor);
void tlc_image_saturation(TlcImage *img, float factor);
void tlc_image_hue(TlcImage *img, float shift);   // shift in [-0.5, 0.5] of the hue circle

//
// data.c: data sets, the one shape every loader fills, and the choice of format
//
// A data set holds its samples either in memory (IDX, CIFAR-10: fixed-size 8-bit images) or as
// a list of image files decoded when a sample is needed (ImageFolder, Flowers102), optionally
// cached once decoded (loader.c).
typedef struct TlcDataset {
  int64_t count;        // samples
  int32_t channels, height, width;  // in memory: every image's shape; from files: 0
  uint8_t *pixels;      // in memory: count images of height * width * channels bytes, HWC; else NULL
  char **paths;         // from files: count paths, decoded per sample; else NULL
  TlcImage *cache;      // from files, when decoded once and kept (loader.c); else NULL
  int32_t *labels;      // count, 0 .. classes - 1
  int32_t classes;      // 1 + the largest label (IDX without idx(names)), else the number of class names
  bool view;            // the arrays are another split's (test viewing val), freed with it
} TlcDataset;

void tlc_dataset_free(TlcDataset *d);

// The splits of one data set and its class names.
typedef struct TlcData {
  TlcDataset train, val, test;   // val may be empty (count 0)
  bool test_is_val;     // test lists val's files (no test folder): decoded once, for both
  int32_t classes;
  char **class_names;   // classes names; NULL where the format has none (IDX without idx(names))
  char val_from[256];   // where val came from, for the report ("DIR/val", "the last 5000 training images")
  char names_from[256]; // where the class names came from ("DIR/batches.meta.txt", "CIFAR-10's published list")
  // image_folder, for the report: images found in sub-folders of class folders (torchvision
  // reads them too), and files torchvision would read that tlc does not decode, by extension.
  int64_t nested, other_formats;
  char other_exts[64];  // ".bmp, .tif"
} TlcData;

typedef struct TlcDataSpec {
  const char *format;   // "idx", "image_folder", "cifar10", "flowers102"
  const char *dir;
  int64_t val_count;    // idx: the last N training images; cifar10: the dev split (last N)
  int32_t dev_batch;    // cifar10: data_batch_N (1..5) is the dev split instead; 0: val_count
  double val_split;     // image_folder without a val/ folder: this fraction of each class
  bool need_train;      // false: only the test split is read (--eval)
  // idx: the classes' names, which IDX files lack (NULL: numbered); every label must be below
  // nclass_names, which is then the class count.
  const char *const *class_names;
  int32_t nclass_names;
  // A subset, applied to every split after loading: only the classes listed (NULL: all),
  // relabelled 0, 1, ... in the list's order; then at most per_class training images of
  // each class (0: all), the first ones in the data set's order.
  const int32_t *classes;
  int32_t nclasses;
  int64_t per_class;
} TlcDataSpec;

// Loads the splits spec names into *out (zeroed first). On failure nothing is held.
int tlc_data_load(const TlcDataSpec *spec, TlcData *out, TlcError *err);
void tlc_data_free(TlcData *d);
// Keeps the samples whose label is listed in classes[0..n) (all when classes is NULL),
// before any decoded cache exists,
// relabelled by their position in the list, and of those at most per_class of each class
// (0: no limit), in order.
int tlc_dataset_subset(TlcDataset *d, const int32_t *classes, int32_t n, int64_t per_class, TlcError *err);
// Moves the last n samples of from (in memory or files) into to (which must be empty).
int tlc_dataset_split_tail(TlcDataset *from, int64_t n, TlcDataset *to, TlcError *err);
// Copies a list of C strings (class names) into new memory; NULL when out of memory.
char **tlc_strings_dup(const char *const *names, int32_t n);
void tlc_strings_free(char **names, int32_t n);

//
// data_idx.c: IDX files (MNIST, Fashion-MNIST), gzip-compressed or not
//
// Loads DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; split is "train" or "test".
int tlc_idx_load(const char *dir, const char *split, TlcDataset *out, TlcError *err);

//
// data_cifar10.c: CIFAR-10's binary batches
//
// DIR/data_batch_1.bin .. data_batch_5.bin (training), DIR/test_batch.bin (test), each a
// sequence of 3073-byte records (label, 1024 red, 1024 green, 1024 blue bytes), and
// DIR/batches.meta.txt (class names, one a line). The last `dev` training images become val,
// or, when dev_batch is 1..5, data_batch_<dev_batch>.bin.
int tlc_cifar10_load(const char *dir, int64_t dev, int32_t dev_batch, bool need_train, TlcData *out, TlcError *err);

//
// data_folder.c: torchvision's ImageFolder layout of JPEG and PNG files
//
// DIR/train/<class>/**/*.{jpg,jpeg,png} with optional DIR/val and DIR/test beside it, or
// DIR/<class>/... alone. Classes are sorted by name (byte order, as torchvision); a class's
// files are those in its folder and every folder below it, in torchvision's order; every
// split must have the same classes. Without a val folder, val_split of each class's files (a
// fixed choice, the same for every seed) is held out; without a test folder, test is val.
int tlc_image_folder_load(const char *dir, double val_split, bool need_train, TlcData *out, TlcError *err);

//
// data_flowers102.c: Oxford Flowers102 (DIR/jpg/image_NNNNN.jpg, imagelabels.mat, setid.mat)
//
// The splits are setid.mat's trnid, valid and tstid; labels are imagelabels.mat's 1..102.
int tlc_flowers102_load(const char *dir, bool need_train, TlcData *out, TlcError *err);

//
// image.c: JPEG and PNG files to 8-bit images (codecs: image_jpeg.c, image_png.c)
//
// What a file holds before it becomes the image asked for (the loader counts conversions by it).
typedef enum {
  TLC_IMAGE_GRAY, TLC_IMAGE_GRAY_ALPHA, TLC_IMAGE_PALETTE, TLC_IMAGE_RGB, TLC_IMAGE_RGBA, TLC_IMAGE_CMYK,
} TlcImageKind;
enum { TLC_IMAGE_KINDS = TLC_IMAGE_CMYK + 1 };
const char *tlc_image_kind_name(TlcImageKind kind);   // "grayscale", "gray+alpha", "palette", "RGB", ...

// PIL's decompression-bomb limits (Image.MAX_IMAGE_PIXELS): above the first it warns, above
// twice that it refuses. A header claiming more than TLC_IMAGE_MAX_PIXELS is refused here.
#define TLC_IMAGE_WARN_PIXELS INT64_C(89478485)
#define TLC_IMAGE_MAX_PIXELS INT64_C(178956970)

typedef struct TlcImageHeader {
  int32_t width, height;
  TlcImageKind kind;
  int channels;           // of the image decoding returns
  int64_t decode_bytes;   // the most memory decoding takes: the pixels and the codec's buffers
} TlcImageHeader;

// A file between its header and its pixels, so that a caller can bound memory before decoding.
typedef struct TlcImageReader TlcImageReader;
// Opens a JPEG (libjpeg-turbo) or PNG (libpng) file, told apart by its first bytes, and reads
// its header. The image will have `channels` channels as torchvision's loader makes them: PIL's
// convert("RGB") (gray replicated; palettes expanded; alpha dropped, not composited; CMYK as
// PIL reads Adobe's files), then for 1 channel convert("L") of that; 0 keeps gray files gray
// and makes the rest RGB. Fails, naming the file, when it is neither format, its header is
// corrupt, or it claims more than TLC_IMAGE_MAX_PIXELS pixels.
int tlc_image_open(const char *path, int channels, TlcImageReader **out, TlcImageHeader *header, TlcError *err);
// Decodes the pixels into new memory. Every libjpeg or libpng warning about corrupt data (a
// truncated file, a bad Huffman code, a CRC error, extra or missing image data) is an error
// naming the file, never a half-gray image.
int tlc_image_decode_pixels(TlcImageReader *r, TlcImage *out, TlcError *err);
void tlc_image_close(TlcImageReader *r);   // NULL is fine
// Open, decode and close in one call; tlc_image_read keeps gray gray (channels 0).
int tlc_image_read_as(const char *path, int channels, TlcImage *out, TlcError *err);
int tlc_image_read(const char *path, TlcImage *out, TlcError *err);
int tlc_image_decode(const uint8_t *bytes, size_t size, const char *name, TlcImage *out, TlcError *err);
// Writes img as an 8-bit PNG, atomically (a temporary beside path, then rename).
int tlc_image_write_png(const char *path, const TlcImage *img, TlcError *err);
void tlc_image_free(TlcImage *img);

//
// pool.c: the CPU thread pool that runs kernels
//
// fn(ctx, begin, end) is called on disjoint ranges covering [0, n), on every core.
typedef void (*TlcRangeFn)(void *ctx, int64_t begin, int64_t end);
void tlc_parallel_for(int64_t n, TlcRangeFn fn, void *ctx);
void tlc_pool_init(int threads);          // 0: one per core
void tlc_pool_shutdown(void);

//
// loader.c: batches decoded and transformed on the loader's own threads, ahead of the step
//
// A pass hands out samples idx[0..n) of one data set, in that order, in batches. Worker threads
// (separate from pool.c's) decode and transform up to `prefetch` batches ahead of the consumer.
// Each sample's randomness comes from a TlcRng seeded from (seed, epoch, sample index), so a
// batch is the same whatever the thread count. A file that cannot be decoded is skipped with a
// warning naming it, counted, and replaced by the next sample of the data set that decodes.
typedef struct TlcLoader TlcLoader;
typedef struct TlcLoaderConfig {
  int threads;          // workers; 0: one per core
  int prefetch;         // batches decoded ahead; 0: 3
  int64_t batch;
  int32_t channels, height, width;   // each sample after the transforms; image files are read
                                     // with these channels (tlc_image_open)
  uint64_t seed;
  int64_t decode_budget;   // bytes of decoding and transforming in flight; 0: 1 GiB
} TlcLoaderConfig;

int tlc_loader_create(TlcLoader **out, const TlcLoaderConfig *cfg, TlcError *err);
// The rng a pass of `epoch` gives data-set sample `index` (the GPU's data path draws from it).
void tlc_loader_sample_rng(const TlcLoader *l, int epoch, int64_t index, TlcRng *r);
void tlc_loader_destroy(TlcLoader *l);
// Decodes every file of ds once and keeps the images (ds->cache) when they fit in *budget bytes
// (which is reduced by what they take); files that do not decode are dropped from ds, with a
// warning and a count. It stops at the first image that does not fit (read from its header,
// before decoding it). Returns 0 (also when they did not fit: then nothing is kept), or
// nonzero on out of memory.
int tlc_loader_cache(TlcLoader *l, TlcDataset *ds, int64_t *budget, TlcError *err);
// Starts a pass (ending the one under way). n must be a multiple of the batch. ds, idx and tf
// must stay valid until the pass ends.
void tlc_loader_begin(TlcLoader *l, const TlcDataset *ds, const int32_t *idx, int64_t n,
                      const TlcTransform *tf, int ntf, int epoch);
// Waits for the next batch and writes it: images as floats (batch, C, H, W), labels. Nonzero
// with err when a sample failed (a transform refused the image: the message names the file).
int tlc_loader_next(TlcLoader *l, float *images, int32_t *labels, TlcError *err);
void tlc_loader_end(TlcLoader *l);   // stops the pass; waits for samples under way
// One sample, on the calling thread, with the same randomness as in a pass.
int tlc_loader_sample(TlcLoader *l, const TlcDataset *ds, int64_t index, const TlcTransform *tf, int ntf,
                      int epoch, float *out, TlcError *err);
typedef struct TlcLoaderStats {
  int64_t skipped;                      // files that did not decode
  int64_t converted[TLC_IMAGE_KINDS];   // files not already in the model's channels, by what they held
  int64_t large;                        // files over TLC_IMAGE_WARN_PIXELS (PIL's warning)
  int64_t peak_bytes;                   // the most bytes reserved for decoding at once
} TlcLoaderStats;
// Each file is counted once, when it is first decoded.
void tlc_loader_stats(TlcLoader *l, TlcLoaderStats *out);

//
// font.c: a tiny bitmap font (5x7 pixels in a 6x9 cell) for labels on sample grids
//
enum { TLC_FONT_CELL_W = 6, TLC_FONT_CELL_H = 9 };
// Draws text with its top-left corner at (x, y), clipped to the image; characters outside
// printable ASCII draw as '?'. Returns the width drawn in pixels.
int tlc_font_draw(TlcImage *img, int x, int y, const char *text, const uint8_t color[3]);

//
// samples.c: a PNG grid of transformed samples with their class names
//
// images: n floats images (C, H, W) as the transforms wrote them; mean and std undo a final
// normalisation (mean 0, std 1 when there was none). Writes path atomically.
int tlc_samples_write(const char *path, const float *images, const int32_t *labels, int n, int channels,
                      int height, int width, const float mean[4], const float std[4],
                      char *const *class_names, TlcError *err);

//
// predict_grid.c: --predict-grid, the predicted images with their classes in one PNG, drawn
// with Cairo loaded at run time (plot_cairo.h)
//
typedef struct TlcGridTile {
  const TlcImage *image;   // the file as decoded
  const char *file;        // its path (the name is shown)
  const char *predicted;   // the most probable class's name
  double probability;      // its softmax probability
  const char *truth;       // the true class's name; NULL: not known
} TlcGridTile;
// Tiles of 200x257 pixels, 5 a row, 12 apart (and from the edges): the picture's size for n.
void tlc_predict_grid_size(int n, int *width, int *height);
// Writes path atomically; fails, saying what to install, where Cairo is missing.
int tlc_predict_grid_write(const char *path, const TlcGridTile *tiles, int n, TlcError *err);

//
// checkpoint.cc: checkpoints as FlatBuffers (schema: runtime/checkpoint.fbs)
//
// A checkpoint holds the training position (epoch, step, rng, best metric) and every named
// tensor of the trainer's state. Saving is atomic: the file is written beside PATH, synced
// and renamed over it, so a crash leaves the old checkpoint or the new one, never a torn one.
typedef struct TlcTensorRef {
  const char *name;     // "layer1.0.conv1.weight", unique within one save/load
  int dims;             // 0..4; 0 is a scalar (one value)
  int64_t shape[4];     // shape[0..dims), outermost first
  float *data;          // the caller's memory, prod(shape) floats; read by save, filled by load
} TlcTensorRef;

typedef struct TlcCheckpointInfo {
  const char *graph;    // model name ("resnet18"), informative only
  uint64_t graph_hash;  // tlc_checkpoint_graph_hash of the trainer's tensors
  int32_t epoch;        // epochs completed
  int64_t step;         // optimizer steps taken
  uint64_t rng[2];      // TlcRng.s, as the next epoch (or the one under way) starts from
  double best_metric;   // best validation accuracy so far
  // A run stopped inside epoch `epoch` + 1 (0: at an epoch's end): training images done in it,
  // and the sums of their losses and correct predictions. Nonzero makes a version-2 file.
  int64_t images_done;
  double loss_sum, correct_sum;
} TlcCheckpointInfo;

// The fingerprint of a set of tensors: FNV-1a 64 of each name and shape, combined so that
// the order does not matter (load matches tensors by name). Data does not enter it.
uint64_t tlc_checkpoint_graph_hash(const TlcTensorRef *tensors, int n);

// Writes info and tensors[0..n) to path atomically (tlc_write_atomic). On failure (a full
// disk too) the previous file at path, if any, is untouched and no temporary file is left.
int tlc_checkpoint_save(const char *path, const TlcCheckpointInfo *info,
                        const TlcTensorRef *tensors, int n, TlcError *err);

// Reads a checkpoint into the caller's tensors. On entry info_out->graph and ->graph_hash
// describe this trainer: a file whose graph_hash differs is refused. The file must hold
// exactly the n tensors named, with the same shapes (in any order). Every check runs before
// anything is copied, so on failure neither the tensors nor *info_out are modified. On success
// every field of *info_out is replaced by the file's; info_out->graph then points to a
// thread-local copy that stays valid until the next tlc_checkpoint_load on the same thread.
int tlc_checkpoint_load(const char *path, TlcCheckpointInfo *info_out,
                        const TlcTensorRef *tensors, int n, TlcError *err);

// Every tensor of a checkpoint, whatever trainer wrote it (for --weights): names, shapes and
// values in new memory, in the file's order, after the same verification as a load. Names
// are unique and every tensor's values match its shape. Free with tlc_tensor_list_free.
typedef struct TlcTensorList {
  TlcTensorRef *tensors;
  int count;
} TlcTensorList;
int tlc_checkpoint_read_tensors(const char *path, TlcTensorList *out, TlcError *err);
void tlc_tensor_list_free(TlcTensorList *list);

//
// atomic_write.c: files written whole or not at all
//
typedef struct TlcBytes {
  const void *data;
  size_t size;
} TlcBytes;

// Writes parts[0..n) one after another to "path.tmp.<pid>", fsyncs it and renames it over
// path. On failure the previous file at path, if any, is untouched and no temporary is left.
int tlc_write_atomic(const char *path, const TlcBytes *parts, int n, TlcError *err);

//
// safetensors.c: the safetensors weight format (https://github.com/huggingface/safetensors)
//
typedef enum { TLC_DTYPE_F32, TLC_DTYPE_F16, TLC_DTYPE_BF16, TLC_DTYPE_F64, TLC_DTYPE_I64 } TlcDtype;

int tlc_dtype_size(TlcDtype d);           // bytes per element
const char *tlc_dtype_name(TlcDtype d);   // "F32", as the format spells it

typedef struct TlcStTensor {
  char *name;           // "layer1.0.conv1.weight"
  TlcDtype dtype;
  int dims;             // 0..4
  int64_t shape[4];
  int64_t count;        // elements: prod(shape)
  int64_t begin, end;   // byte span in the data area; end - begin == count * dtype size
} TlcStTensor;

typedef struct TlcSafetensors {
  const char *path;     // the caller's string, for messages
  TlcStTensor *tensors; // in the header's order, metadata excluded
  int count;
  uint8_t *file;        // the whole file
  int64_t size;
  const uint8_t *data;  // the data area inside file
  int64_t data_bytes;
} TlcSafetensors;

// Reads and checks the whole file (see safetensors.c for every check). On failure err names
// the file and the tensor or field, and *f holds nothing to close.
int tlc_safetensors_open(const char *path, TlcSafetensors *f, TlcError *err);
void tlc_safetensors_close(TlcSafetensors *f);
const TlcStTensor *tlc_safetensors_find(const TlcSafetensors *f, const char *name);   // NULL if absent
// Copies t into dst: count floats (from F32, F16, BF16, F64) or, with as_int, count int64s
// (from I64 only). A dtype of the other kind is an error naming the tensor.
int tlc_safetensors_read(const TlcSafetensors *f, const TlcStTensor *t, void *dst, bool as_int, TlcError *err);
// Whether the file at path starts as a safetensors file does (judged by content, not name).
bool tlc_safetensors_sniff(const char *path);

typedef struct TlcSafetensorsEntry {
  const char *name;
  int dims;
  int64_t shape[4];
  bool is_int;          // I64; else F32
  const void *data;     // prod(shape) int64_t or float values
} TlcSafetensorsEntry;

int64_t tlc_safetensors_entry_bytes(const TlcSafetensorsEntry *e);
// Writes tensors[0..n) in that order, with metadata ("key", "value", ..., NULL; may be NULL)
// under "__metadata__", atomically (tlc_write_atomic). Names must be unique.
int tlc_safetensors_save(const char *path, const TlcSafetensorsEntry *tensors, int n, const char *const *metadata,
                         TlcError *err);

//
// npy.c: NumPy's .npy format, for arrays scripts read back (--logits)
//
// Writes a float32 C-order array of shape [rows, cols] (format version 1.0), atomically.
int tlc_npy_save_f32(const char *path, const float *data, int64_t rows, int64_t cols, TlcError *err);

//
// bundle.cc: the GPU kernels embedded in a trainer, as FlatBuffers (schema: runtime/bundle.fbs)
//
typedef struct TlcBundleFunction {
  const char *name;     // the entry point
  const char *source;   // its CUDA C
} TlcBundleFunction;

typedef struct TlcBundleLaunch {
  const char *kernel, *comment;
  uint32_t function;    // index into TlcBundle.functions
  int64_t grid;         // blocks
  int32_t block;        // threads per block
  int64_t shared;       // bytes of dynamic shared memory per block
} TlcBundleLaunch;

typedef struct TlcBundle {
  const char *arch, *nvrtc, *prelude;
  int32_t block;        // version 1's block of every launch; read into each launch
  TlcBundleFunction *functions;
  int nfunctions;
  TlcBundleLaunch *launches;  // training step, then evaluation pass
  int nlaunches;
  const char *ptx;
  size_t ptx_size;
  const uint8_t *cubin;
  size_t cubin_size;
  uint8_t *owned;       // tlc_bundle_read's aligned copy of data that was not 8-byte aligned, or NULL
} TlcBundle;

// Serialises b into a malloc'd buffer (*data, *size).
int tlc_bundle_build(const TlcBundle *b, uint8_t **data, size_t *size, TlcError *err);
// Verifies data (at any alignment) and describes it in *out: strings and code point into
// data, which must outlive *out, or into a copy of it; the arrays and the copy are allocated
// and released by tlc_bundle_free.
int tlc_bundle_read(const void *data, size_t size, TlcBundle *out, TlcError *err);
void tlc_bundle_free(TlcBundle *b);

//
// kir_cpu.c: the CPU meaning of the kernel IR's warp operations (called by CPU kernels that
// tlc lowered from block kernels; layouts as the PTX ISA gives them)
//
void tlc_kir_cp_async(void *dst, const void *src, int64_t size, int64_t src_bytes);
void tlc_kir_ldmatrix(uint32_t *dst, const uint16_t *shared, const int64_t *rows, int64_t tiles, int64_t trans);
void tlc_kir_mma_16816_bf16(float *d, const uint32_t *a, const uint32_t *b, const float *c);

//
// gpu.c: the CUDA driver API, loaded with dlopen (a trainer has no link-time CUDA dependency)
//
typedef struct TlcGpu TlcGpu;

// Finds the CUDA driver and a GPU, loads the bundle's cubin (or its PTX when the GPU is not
// the cubin's architecture) and allocates the device arena. Every failure says what is
// missing: no driver, no GPU, a driver too old for the kernels, not enough memory.
int tlc_gpu_open(TlcGpu **out, const void *bundle, size_t bundle_size, int64_t arena_bytes, TlcError *err);
const char *tlc_gpu_name(const TlcGpu *g);   // "NVIDIA H100 80GB HBM3 (sm_90)"
// Runs the bundle's launch number `launch` (its function, grid, block and shared memory);
// buffer i is the device arena + offsets[i]. A failed launch is remembered (with the
// kernel's name) and reported by tlc_gpu_sync.
void tlc_gpu_launch(TlcGpu *g, int launch, const int64_t *offsets, int n);
int tlc_gpu_sync(TlcGpu *g, TlcError *err);
// Copies bytes between host memory and the device arena at offset.
int tlc_gpu_upload(TlcGpu *g, const void *src, int64_t offset, int64_t bytes, TlcError *err);
int tlc_gpu_download(TlcGpu *g, void *dst, int64_t offset, int64_t bytes, TlcError *err);
// The device memory free now and in all, as the driver reports them.
int tlc_gpu_memory(TlcGpu *g, int64_t *free_bytes, int64_t *total_bytes, TlcError *err);
// The feature cache (trainer_features.c): rows x row_floats floats of device memory beside
// the arena, room for an epoch's order of rows and for a batch's rows; the bundle's gather
// kernel `gather` writes a batch's features at arena offset `features`. Fails, holding
// nothing, when the device cannot hold them.
int tlc_gpu_cache_alloc(TlcGpu *g, int64_t rows, int64_t row_floats, int64_t batch, int gather, int64_t features,
                        TlcError *err);
// Rows [first, first + n) of the cache <- n rows at the arena's offset, device to device.
int tlc_gpu_cache_store(TlcGpu *g, int64_t first, int64_t offset, int64_t n, TlcError *err);
// The epoch's order of rows, order[0..n), goes up for the gathers.
int tlc_gpu_cache_order(TlcGpu *g, const int32_t *order, int64_t n, TlcError *err);
// The batch's rows, order[first .. first + batch), copied on the device to the fixed place
// the gather reads: on the compute stream between tlc_gpu_step_begin and tlc_gpu_graph_step,
// else at once.
int tlc_gpu_cache_select(TlcGpu *g, int64_t first, TlcError *err);
// Launches the gather: the selected rows of the cache into the arena's features. Its
// arguments never change, so a captured graph may hold it.
void tlc_gpu_cache_gather(TlcGpu *g);
// Device memory beside the arena, for the GPU's data path (trainer_gpu_data.c): allocated,
// freed, filled from and read back to the host; a launch on such pointers (the arena's own
// from tlc_gpu_arena_at).
int tlc_gpu_alloc(TlcGpu *g, int64_t bytes, uint64_t *ptr, TlcError *err);
void tlc_gpu_free(TlcGpu *g, uint64_t ptr);
int tlc_gpu_put(TlcGpu *g, uint64_t dst, const void *src, int64_t bytes, TlcError *err);
int tlc_gpu_get(TlcGpu *g, void *dst, uint64_t src, int64_t bytes, TlcError *err);
uint64_t tlc_gpu_arena_at(const TlcGpu *g, int64_t offset);
void tlc_gpu_launch_on(TlcGpu *g, int launch, const uint64_t *pointers, int n);
void tlc_gpu_close(TlcGpu *g);

// gpu_graph.c: the steps as CUDA graphs, their inputs uploaded ahead on a second stream from
// two slots of pinned host memory.
// Streams, events and the two slots, each holding the arena's input region [io_offset,
// io_offset + io_bytes), filled first from host_io (those bytes of the host arena; host_io
// must stay), of which [images, images + images_bytes) are the images. Fails, saying why, on
// a driver without graphs (older than CUDA 11.4) or without the memory.
int tlc_gpu_pipeline_open(TlcGpu *g, int64_t io_offset, int64_t io_bytes, int64_t images, int64_t images_bytes,
                          const char *host_io, TlcError *err);
// The slot's pinned copy of the input region for the next batch, once the copy up from it
// under way is done. The batch sends its images or not (built on the device, or not read),
// and `extra` bytes more (tlc_gpu_slot_extra), for which the slot grows if it must.
char *tlc_gpu_slot_fill(TlcGpu *g, int slot, bool images, int64_t extra, TlcError *err);
// Where the slot's extra bytes are: its pinned memory, and on the device (kernels that run on
// the compute stream between tlc_gpu_step_begin and tlc_gpu_graph_step read them there).
void tlc_gpu_slot_extra(TlcGpu *g, int slot, char **host, uint64_t *device);
// Queues the slot's copy up on the upload stream, after the compute stream has read its last.
int tlc_gpu_slot_send(TlcGpu *g, int slot, TlcError *err);
// Queues on the compute stream, once the slot is up, its copy into the arena's input region;
// launches from here to tlc_gpu_graph_step go to the compute stream too.
int tlc_gpu_step_begin(TlcGpu *g, int slot, TlcError *err);
// Records that the compute stream has read the slot, then queues the step's graph, captured
// from `first`'s launches (unless NULL) and `step`'s at the first call of its kind.
int tlc_gpu_graph_step(TlcGpu *g, bool training, int slot, void (*first)(TlcGpu *gpu), void (*step)(TlcGpu *gpu),
                       TlcError *err);
int tlc_gpu_graph_wait(TlcGpu *g, TlcError *err);   // the compute stream's work done, or its error

//
// trainer.c: what a generated trainer's main() calls around its step functions
//
// The generated C file holds the model (a TlcModel), the straight-line step functions
// and main(), whose loop reads:
//
//   TlcRun run;
//   if (tlc_run_start(&run, &model, argc, argv)) return run.status;
//   for (int epoch = run.first_epoch; epoch < run.epochs; epoch++) {
//     tlc_epoch_begin(&run, epoch);
//     while (tlc_train_batch(&run)) if (tlc_run_step(&run, &steps, true) || tlc_train_batch_done(&run)) return run.status;
//     for (TlcSplit split; tlc_next_eval(&run, &split);)   // validation, the test every N epochs
//       while (tlc_eval_batch(&run, split)) { if (tlc_run_step(&run, &steps, false)) return run.status; tlc_eval_batch_done(&run); }
//     if (tlc_epoch_end(&run, epoch)) return run.status;
//   }
//   for (TlcSplit split; tlc_next_eval(&run, &split);)     // the test: last weights, then the best
//     while (tlc_eval_batch(&run, split)) { if (tlc_run_step(&run, &steps, false)) return run.status; tlc_eval_batch_done(&run); }
//   return tlc_run_finish(&run);

typedef enum { TLC_INIT_ZERO, TLC_INIT_ONE, TLC_INIT_UNIFORM_FAN_IN } TlcInit;

// One tensor of the trainer's state: a parameter, a buffer or an optimizer state.
typedef struct TlcParamInfo {
  const char *name;     // "features.0.0.weight", "features.0.0.weight.momentum_buffer"
  int dims;
  int64_t shape[4];
  int64_t offset;       // byte offset in the arena
  bool is_int;          // int64 elements (num_batches_tracked); else float
  bool trainable;
  TlcInit init;         // UNIFORM_FAN_IN: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default
  int64_t fan_in;
  bool head;            // a parameter of the layer that produces the logits (--weights may re-initialise it)
  bool optim;           // optimizer state: checkpointed, never imported or exported
} TlcParamInfo;

typedef enum { TLC_SCHED_CONSTANT, TLC_SCHED_STEP, TLC_SCHED_MULTISTEP, TLC_SCHED_COSINE } TlcScheduleKind;
typedef struct TlcSchedule {
  TlcScheduleKind kind;
  int32_t step_size;    // STEP
  int32_t milestones[16], nmilestones;   // MULTISTEP
  double gamma;         // STEP, MULTISTEP
  double eta_min_ratio; // COSINE: eta_min / lr
  int32_t warmup;       // epochs of linear warm-up (0: none)
  double lr;            // the optimizer's learning rate, which the kernels hold (times each group's
                        // multiplier): the trainer's --lr scales them all by its ratio to this
} TlcSchedule;

// Everything the generated code knows about its experiment.
typedef struct TlcModel {
  const char *name;     // "cnn_bn"
  const char *source;   // the .graph it was compiled from
  int64_t batch;
  int32_t channels, height, width, classes;
  int64_t arena_bytes;
  // The GPU's arena: smaller where the GPU keeps activations in bf16 (precision "bf16"). The
  // state, the steps' inputs and the outputs below are at the same offsets in both arenas.
  int64_t gpu_arena_bytes;
  bool gpu_bf16;
  const TlcParamInfo *params;   // every tensor of the state, checkpointed
  int nparams;
  // Byte offsets in the arena of the step's inputs and outputs (train and eval steps
  // share the input buffers).
  int64_t images, labels, seed, lr;            // float images, int64 labels, int64[2] {seed, step}, float[1]
  int64_t train_loss, train_logits;            // float [batch], float [batch, classes]
  int64_t eval_loss, eval_logits;
  // The recipe.
  int32_t epochs;
  uint64_t seed_default;
  const char *data_format;   // "idx", "image_folder", "cifar10" or "flowers102"
  const char *data_dir;      // the default of --data
  int32_t val_count;         // idx: the last N training images; cifar10: the dev split
  int32_t dev_batch;         // cifar10: data_batch_N is the dev split (0: val_count)
  float val_split;           // image_folder without a val folder: the fraction held out
  const char *const *data_class_names;   // idx(names = [...]): the data set's classes; NULL: numbered
  int32_t ndata_class_names;
  const int32_t *subset_classes;   // the experiment's subset (TlcDataSpec): NULL, all classes
  int32_t nsubset_classes;
  int64_t per_class;               // at most this many training images per class (0: all)
  const TlcTransform *train_transform, *eval_transform;   // in order; normalize last
  int ntrain_transform, neval_transform;
  TlcSchedule schedule;
  int32_t test_every;        // the test split is evaluated every N epochs too (0: only at the end)
  // The arena's regions: state (parameters, buffers, optimizer state) from 0, then the
  // steps' inputs and outputs; the rest is activations.
  int64_t state_bytes, io_offset, io_bytes;
  const unsigned char *bundle;   // the GPU kernels (bundle.fbs), or NULL: a CPU-only trainer
  size_t bundle_size;
  const char *weights;       // the default of --weights (the experiment's `weights`); NULL: none
  // The feature cache: the byte offset of the tensor the training step can start from and
  // its floats per image (0: none), and the training step cut there in two: the frozen
  // prefix (run once per training image) and the rest (run every step from the cache).
  int64_t features, feature_floats;
  void (*train_features)(char *arena), (*train_head)(char *arena);
  // The same two parts on the GPU, where the cache is device memory and the bundle's launch
  // number feature_gather (buffers: the cache, the batch's rows of it as int64, the tensor
  // at `features`) fills the boundary every step.
  void (*train_features_gpu)(TlcGpu *gpu), (*train_head_gpu)(TlcGpu *gpu);
  int feature_gather;
  // The GPU's data path: the bundle's launch number of the augment kernel (buffers: decoded
  // images, sample parameters, filter taps, normalisation table, the batch at `images`); the
  // next three launches are its variant that writes bytes for colour jitter and the two jitter
  // kernels (codegen/kernels_jitter.c); -1 where the model takes no gray or RGB image.
  int augment;
  // Parameters as tlc --stats counts them (buffers excluded): all, and those that train.
  int64_t parameters, trainable_parameters;
} TlcModel;

// One kernel of a step on both devices, for --check-gpu.
#define TLC_MAX_BUFFERS 9
typedef struct TlcKernelCall {
  const char *name;
  TlcRangeFn cpu;       // the CPU kernel, over [0, extent) of its parallel loop
  int64_t extent;
  int pass1;            // the GPU's first pass, launched before `launch` (a two-pass reduction), or -1
  int launch;           // the GPU kernel: the bundle's launch, or -1: none (another call's does its work)
  int on_arena;         // the GPU launch takes the whole arena (2 buffers at offset 0): a run of updates
  double tolerance;     // the largest difference allowed, relative to the buffer's largest value
  int nbufs;            // the GPU kernel's; the CPU kernel's are the first of them
  int64_t offset[TLC_MAX_BUFFERS], bytes[TLC_MAX_BUFFERS];   // its buffers in the CPU's arena (bytes as floats)
  int64_t gpu_offset[TLC_MAX_BUFFERS];                       // and in the GPU's
  unsigned written, is_int;      // bit i: buffer i is written; holds int64 (else float)
  unsigned bf16;                 // bit i: the GPU holds buffer i in bf16 (bytes / 2 of them)
} TlcKernelCall;

// The step functions tlc generates; the GPU ones are NULL in a CPU-only trainer.
typedef struct TlcSteps {
  void (*train_cpu)(char *arena), (*eval_cpu)(char *arena);
  void (*train_gpu)(TlcGpu *gpu), (*eval_gpu)(TlcGpu *gpu);
  const TlcKernelCall *train_calls;
  int ntrain_calls;
  const TlcKernelCall *eval_calls;
  int neval_calls;
} TlcSteps;

typedef enum { TLC_SPLIT_TRAIN, TLC_SPLIT_VAL, TLC_SPLIT_TEST } TlcSplit;

// The state of one run. Fields the generated loop reads are documented; the rest is the
// runtime's own.
typedef struct TlcProfile TlcProfile;

typedef struct TlcRun {
  const TlcModel *model;
  char *arena;          // the model's arena (64-byte aligned)
  int first_epoch, epochs;   // resume starts at first_epoch
  int status;           // the exit status to return when a call reports failure
  // Runtime-private from here on.
  TlcData data;
  TlcLoader *loader;
  int32_t *order;       // the training images' order this epoch
  int32_t *eval_order;  // an evaluation pass's samples, padded to whole batches
  int64_t ntrain, nval, cursor;
  TlcSplit eval_split;
  int64_t step;
  TlcRng rng;
  uint64_t seed;
  const char *out_dir, *data_dir, *resume, *eval_checkpoint, *device;
  int64_t limit;
  double epoch_loss, epoch_correct, epoch_seen, eval_loss, eval_correct, eval_seen;
  double best_val, train_seconds, epoch_start;
  float lr_factor;      // this epoch's learning rate over the recipe's: the schedule times --lr's ratio
  double lr;            // --lr (0: the recipe's)
  FILE *metrics;
  int64_t ntest;        // test images used (--limit)
  int64_t eval_cursor;  // next image of the split being evaluated
  int64_t eval_real;    // real (not padding) images in the current evaluation batch
  bool eval_active;     // an evaluation pass over eval_split is under way
  bool train_active;    // the loader is running this epoch's training pass
  bool failed;          // the loader failed mid-pass; the next call that can fail reports it
  TlcError fail_err;
  int epoch;            // the epoch under way (0-based)
  // The evaluation passes (trainer_eval.c): the plan of the phase under way (after an
  // epoch's training pass, or after the epochs), the pass running, and the figures.
  bool in_epoch;        // between tlc_epoch_begin and tlc_epoch_end
  int plan[3], nplan, next_plan, eval_pass;
  double val_loss, val_acc, epoch_test_loss, epoch_test_acc;   // this epoch's; NaN: not run
  double last_test_loss, last_test_acc;   // the last weights' test figures; NaN: not yet
  double best_test_loss, best_test_acc;   // best.ckpt's
  int last_tested_epoch, best_epoch;      // the epochs those weights are of; -1: none
  int epochs_done;      // epochs completed, counting those before a resume
  int threads;          // --threads; 0: one per core
  int loader_threads;   // --loader-threads; 0: as --threads
  int64_t cache_mb;     // --cache-mb: the decoded-image cache's budget
  double epoch_seconds, images_trained;  // this epoch's training time; images trained this run
  char *out_owned;      // the default --out, built from the model name
  char *last_path, *best_path;  // OUT/last.ckpt, OUT/best.ckpt
  const char *last_good;        // the newest checkpoint known good, for the NaN message
  TlcTensorRef *tensors;        // model->params as checkpoint tensors; int64 ones via float copies
  uint64_t graph_hash;          // tlc_checkpoint_graph_hash(tensors)
  int32_t *batch_labels;        // the labels of the batch in the arena (the step may reuse its input)
  const char *weights;          // --weights; NULL: the model's default
  const char *export_path;      // --export: safetensors written at the end
  const char *logits_path;      // --logits: the test split's logits as .npy
  float *test_logits;           // [ntest, classes] when logits_path is set
  TlcGpu *gpu;                  // the GPU the steps run on, or NULL (the CPU)
  bool no_feature_cache;        // --no-feature-cache
  bool use_features;            // training steps start from cached features (TlcModel.features)
  bool features_ready;          // the cache is computed (at the first training pass of the run)
  float *features;              // on the CPU: [ntrain, feature_floats], else NULL
  int64_t gpu_cache_mb;         // --gpu-cache-mb; -1: the device's free memory less TRAINER_GPU_RESERVE_MB
  bool check_gpu;               // --check-gpu: every step kernel by kernel on both devices
  bool no_cuda_graph;           // --no-cuda-graph: GPU steps launch kernel by kernel, inputs copied before
  bool graphs;                  // GPU steps replay CUDA graphs, inputs go up through gpu_graph.c's slots
  int fill_slot;                // the slot the next batch loaded goes to
  int batch_slot;               // the slot of the batch in hand, and whether it went up already
  bool batch_sent;
  bool ahead;                   // the next batch is loaded (and sent) in ahead_slot
  int ahead_slot;
  int32_t *ahead_labels;        // its labels
  // Which batch that is (trainer_ahead.c): of which split, training or not, at which epoch,
  // which samples; a step of another batch drops it.
  const TlcDataset *ahead_ds;
  bool ahead_training;
  int ahead_epoch;
  int32_t *ahead_order;         // [batch]
  int32_t *next_order;          // [ntrain]: the next epoch's training order, drawn ahead
  bool loader_ahead;            // the loader is begun on the pass of the batch loaded ahead
  bool ahead_starts_pass;       // it is the first batch of a pass
  int64_t batches_slotted, batches_ahead, passes_ahead;   // through the slots; sent ahead; of them, a pass's first
  bool no_gpu_data;             // --no-gpu-data
  bool check_gpu_data;          // --check-gpu-data: every GPU-built batch compared with the loader's
  int64_t gpu_data_mb;          // --gpu-data-mb; -1: the device's free memory less TRAINER_GPU_RESERVE_MB
  struct TrainerGpuData *gpu_data;   // the decoded images on the device (trainer_gpu_data.c), or NULL
  bool gpu_batch;               // the batch in the device arena was built there (not uploaded)
  bool profiling;               // --profile: every kernel of every step timed (trainer_profile.c)
  struct TlcProfile *profile;   // the times so far
  bool checked_train, checked_eval;   // the first of each was reported in full
  const char **predict_paths;   // --predict: the image files (argv's strings), in order
  int64_t npredict;             // their count; 0: no prediction
  const char *predict_grid;     // --predict-grid: the PNG of the predicted images
  int64_t *confusion;           // [classes, classes] (true, predicted) of the latest test pass
  int argc;                     // the command line, for the command that resumes a stopped run
  char **argv;
  TlcRng epoch_rng;             // run->rng as this epoch started (before its shuffle)
  int64_t resume_images;        // --resume of a run stopped inside an epoch: its images done,
  double resume_loss, resume_correct;   // and its sums; used by the first epoch, then 0
  double resumed_seen;          // images of this epoch trained before the resume (not timed)
} TlcRun;

// Parses the trainer's flags (--data --epochs --device --seed --out --resume --limit --eval
// --threads --loader-threads --cache-mb --weights --export --logits --check-gpu --predict, --help),
// loads and reports the data, starts the loader (and writes OUT/samples.png), allocates and
// initialises the state, then loads --weights into it (or resumes), and opens the device.
// Returns nonzero after printing "error: ..." (run->status is then the exit status), or
// after --help (status 0).
// --eval FILE loads FILE (a checkpoint, or weights in safetensors) and returns 0 with
// first_epoch == epochs, so the loop goes straight to the test evaluation and
// tlc_run_finish prints the result line.
// --predict IMAGE... (with --eval or --weights) does the same with the images as the test
// split, and tlc_run_finish prints one "predict:" line per image instead of the result line.
// A call that reports failure (tlc_run_start, tlc_train_batch_done, tlc_epoch_end) has
// already released the run: main only returns run->status.
// Ctrl-C or SIGTERM during training: the step under way finishes, tlc_train_batch and
// tlc_eval_batch return false, and tlc_epoch_end (or tlc_run_finish, during the test pass)
// saves OUT/last.ckpt, inside the epoch if need be, prints the command that resumes the run
// and reports failure with status 128 + the signal's number; the resumed run ends bit for bit
// as an uninterrupted one.
int tlc_run_start(TlcRun *run, const TlcModel *model, int argc, char **argv);
// Runs the training step or the evaluation pass on the run's device: on a GPU, the batch
// goes up before and the loss and logits come back after. Nonzero after a failure (a GPU
// error), which has released the run like tlc_train_batch_done's.
int tlc_run_step(TlcRun *run, const TlcSteps *steps, bool training);
void tlc_epoch_begin(TlcRun *run, int epoch);        // shuffles, sets the learning rate
bool tlc_train_batch(TlcRun *run);                   // fills the next batch; false at the end (or on a loader failure)
int tlc_train_batch_done(TlcRun *run);               // loss, accuracy; nonzero on a NaN loss
// The next evaluation pass of the epoch under way (after its training pass) or, after the
// epochs, of the run's end (trainer_eval.c); false when there is none left.
bool tlc_next_eval(TlcRun *run, TlcSplit *split);
bool tlc_eval_batch(TlcRun *run, TlcSplit split);
void tlc_eval_batch_done(TlcRun *run);
int tlc_epoch_end(TlcRun *run, int epoch);           // prints, logs, checkpoints
// Writes --export and --logits, prints "result: ...", frees. Returns 0, or run->status
// after printing "error: ..." when a file could not be written.
int tlc_run_finish(TlcRun *run);

#ifdef __cplusplus
}
#endif
#endif
