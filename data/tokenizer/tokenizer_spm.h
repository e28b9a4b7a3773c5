// The SentencePiece model shared by its loader (tokenizer_spm.c) and its
// encoder/decoder (tokenizer_spm_encode.c). Internal.
#ifndef GK_DATA_TOKENIZER_SPM_H
#define GK_DATA_TOKENIZER_SPM_H

#include "data/tokenizer/tokenizer_impl.h"

// ModelProto.SentencePiece.Type
enum { SPM_NORMAL = 1, SPM_UNKNOWN = 2, SPM_CONTROL = 3, SPM_USER_DEFINED = 4, SPM_UNUSED = 5, SPM_BYTE = 6 };

struct spm_model {
    int32_t n_pieces;
    uint8_t *type;          // [n_pieces]
    tok_strmap pieces;      // NORMAL / USER_DEFINED / UNUSED piece -> id (the model's pieces_)
    tok_strmap reserved;    // CONTROL / UNKNOWN / BYTE piece -> id (reserved_id_map_)
    int32_t *out_id;        // [n_pieces] PieceToId(piece(id)): the reserved map first
    // merge keys: a piece id, or n_pieces + k for the k-th one-character string that
    // is no piece but appears as a half of one ("pseudo" symbols)
    int32_t *bmp_key;       // [0x10000] merge key of a one-character symbol per code point, -1 none
    tok_strmap char_keys;   // one-character string -> merge key (all code points)
    int32_t *pseudo_out;    // [n_pseudo] output id of a pseudo symbol (reserved piece or unk)
    int32_t n_pseudo;
    bpe_pairs pairs;        // (left key, right key) -> (score rank, piece id | BPE_REV for UNUSED)
    tok_trie user;          // USER_DEFINED pieces (value: id), the PrefixMatcher
    int32_t unk;            // the UNKNOWN piece
    int32_t byte_ids[256];  // "<0xXX>" BYTE pieces when byte_fallback
    bool byte_fallback;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    char *unk_surface;      // decode of <unk> (trainer_spec.unk_surface, default " \xE2\x81\x87 ")
    size_t unk_surface_len;
};

#endif
