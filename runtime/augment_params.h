// augment_params.h: the layout of the augment kernel's per-sample parameters, shared by the
// kernel that reads them (codegen/kernels_augment.c) and the runtime that writes them
// (runtime/trainer_gpu_data.c). Each sample has AUG_PARAMS int64 values, in this order; the
// maps and the rotation are TlcAugmentPlan's (tlcrt.h, section "augment.c").
#ifndef TLC_AUGMENT_PARAMS_H
#define TLC_AUGMENT_PARAMS_H

enum {
  AUG_PIXELS,           // the image's first byte in the decoded images
  AUG_ROW,              // its width (pixels a row)
  AUG_CHANNELS,         // its channels: 1 (every channel reads it) or 3
  AUG_TAPS_Y,           // where its row taps start in the taps buffer
  AUG_TAPS_X,           // where its column taps start
  AUG_STRIDE_Y,         // int64 per row tap entry: first, count, weights
  AUG_STRIDE_X,
  AUG_AFTER_AY, AUG_AFTER_SY, AUG_AFTER_AX, AUG_AFTER_SX,   // batch pixel -> rotated image
  AUG_ROTATED_HEIGHT, AUG_ROTATED_WIDTH,
  AUG_ROTATE,           // 6 values: the rotation's 16.16 map, rotated -> its input
  AUG_BEFORE_AY = AUG_ROTATE + 6, AUG_BEFORE_SY, AUG_BEFORE_AX, AUG_BEFORE_SX,   // -> resized image
  AUG_HEIGHT, AUG_WIDTH,   // the resized image
  AUG_JITTER,           // 4 values: colour jitter's adjustments in order (AUG_BRIGHTNESS..AUG_HUE, -1: none)
  AUG_HUE_STEP = AUG_JITTER + 4,   // hue: the step added to H (0..255)
  AUG_PARAMS = 32
};

// Colour jitter's adjustments, as TlcTransformDraw numbers them; the first three's factors are
// the sample's floats in the factors buffer (AUG_FACTORS a sample), by that number.
enum { AUG_BRIGHTNESS, AUG_CONTRAST, AUG_SATURATION, AUG_HUE, AUG_FACTORS = 4 };

// Pillow's resampling weights: fixed point with 22 fraction bits.
enum { AUG_BITS = 22 };

#endif
