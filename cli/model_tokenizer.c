#include "cli/model_tokenizer.h"

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
