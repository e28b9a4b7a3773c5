#include "cli/gen_flags.h"

int sampling_from_flags(const arg_spec *specs, int n, sampling *s, gk_err *err) {
    *s = (sampling){.greedy = arg_flag(specs, n, "greedy"), .temperature = 1, .top_p = 1};
    const char *v;
    long long k;
    if ((v = arg_get(specs, n, "temperature")) && parse_double("temperature", v, &s->temperature, err)) return -1;
    if ((v = arg_get(specs, n, "top-k")) && parse_int("top-k", v, 0, 1 << 30, &k, err)) return -1;
    if (v) s->top_k = (int)k;
    if ((v = arg_get(specs, n, "top-p")) && parse_double("top-p", v, &s->top_p, err)) return -1;
    if ((v = arg_get(specs, n, "min-p")) && parse_double("min-p", v, &s->min_p, err)) return -1;
    if (s->greedy && (arg_get(specs, n, "temperature") || arg_get(specs, n, "top-k") || arg_get(specs, n, "top-p") ||
                      arg_get(specs, n, "min-p")))
        return gk_fail(err, GK_EUSAGE, "--greedy takes no sampling settings (--temperature, --top-k, --top-p, --min-p)");
    return sampling_check(s, err);
}
