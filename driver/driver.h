// driver.h: the tlc command (main.c), which sits on top of the compiler (compiler/) and the
// code generators (codegen/), and its `inspect` subcommand (inspect.c), which reads the
// kernel bundle of a built trainer through the runtime's reader.
#ifndef TLC_DRIVER_H
#define TLC_DRIVER_H

// `tlc inspect TRAINER [KERNEL] [--ptx]`, given the arguments after "inspect".
int inspect_main(int argc, char **argv);

#endif
