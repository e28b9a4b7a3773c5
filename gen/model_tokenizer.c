#include "gen/model_tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "model/model_dir.h"

int tokenizer_for_model(const char *model_dir, const char *path, bool required, tokenizer **tok, gk_err *err) {
    *tok = NULL;
    char *found = path ? NULL : model_dir_tokenizer_file(model_dir);
    const char *use = path ? path : found;
    int rc = use ? tokenizer_load(use, tok, err) : 0;
    if (rc == 0 && !use && required)
        rc = gk_fail(err, GK_EUSAGE, "%s has no tokenizer.json or tokenizer.model: give --tokenizer FILE", model_dir);
    char sha[65];
    bool recorded = false; // the model dir's own tokenizer file is its record: nothing to compare
    if (rc == 0 && path && model_dir_tokenizer(model_dir, sha, &recorded, err)) rc = -1;
    if (rc == 0 && *tok && recorded && strcmp(sha, tokenizer_sha256(*tok)))
        rc = gk_fail(err, GK_EINPUT, "%s: model %s was trained with another tokenizer (sha256 %.12s..., this one %.12s...)",
                     use, model_dir, sha, tokenizer_sha256(*tok));
    if (rc) {
        tokenizer_free(*tok);
        *tok = NULL;
    }
    free(found);
    return rc;
}

size_t stop_ids_for(const model_config *cfg, const tokenizer *tok, int32_t stops[2]) {
    size_t n = 0;
    if (cfg->eos_id >= 0) stops[n++] = cfg->eos_id;
    int32_t eot = tok ? tokenizer_token_id(tok, "<end_of_turn>") : -1;
    if (eot >= 0 && eot != cfg->eos_id) stops[n++] = eot;
    return n;
}
