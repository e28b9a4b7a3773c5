// The most OpenMP threads a command may ask for (--threads, the run config's
// `threads`): far more overflow libgomp's stacks or crawl.
#ifndef GK_THREADS_H
#define GK_THREADS_H

enum { MAX_THREADS = 4096 };

#endif
