"""What an ablation sweep runs (scripts/sweep.py): its config, a profile, the cells.

A sweep config (configs/ablations/NAME.yaml):

  name, claim          what the ablation tests and the report's numbers for it
  base                 a gemmakd run config (train's keys) shared by every cell
  model                the base model: {config: FILE, set: {config.json keys}} (each cell's is written
                       out as its own config.json, so arms can change its shape)
  axes                 {axis: {value: overrides}}: the cells are every combination of one value per
                       axis; an override holds run-config keys and `model: {set: {...}}` keys
  seeds                the seeds each cell runs with (run-config `seed`)
  compare              [[axis, a, b], ...]: a - b paired by seed (and by the other axes' values)
  match                [axis, tolerance]: the values of `axis` must have equal non-embedding
                       parameters within tolerance (relative)
  evals                what each cell's model is evaluated on (scripts/sweep.py, run_evals)
  prepare              named steps run before the cells, once: {name: {train: run config} |
                       {teacher_logits: {flags}} | {command: [argv], creates: path}}, with
                       `for: evals` on a step that only evaluations need; steps are named by
                       their content, so the same step in two ablations runs once
  profiles             {smoke|cpu|gpu: {vars, base, model, seeds, prepare, evals}}: merged over the
                       top level (mappings key by key)
  vars                 strings substituted for {name} anywhere in the config ({results}: the sweep's
                       results dir, {runs}: where its runs live, {prepare.NAME}: a prepared step's output)

A cell's run config is everything above resolved; two cells (of this sweep or another) whose
resolved run configs are equal share one run directory, runs/ablations/<hash>/, so an arm
common to several ablations (the distilled student of ablations a, e and f) is trained once.
"""
import copy
import hashlib
import itertools
import json
import os
import re

import yaml

PROFILES = ("smoke", "cpu", "gpu")


def merge(a, b):
    """b over a: mappings merged key by key, anything else replaced (None deletes)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return copy.deepcopy(b)
    out = copy.deepcopy(a)
    for k, v in b.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


def substitute(value, variables):
    """{name} in every string of value replaced by variables[name]; unknown names are an error."""
    if isinstance(value, str):
        def one(m):
            if m.group(1) not in variables:
                raise ValueError(f"unknown variable {{{m.group(1)}}} (known: {', '.join(sorted(variables))})")
            return str(variables[m.group(1)])
        for _ in range(8):  # a variable's value may name another variable
            new = re.sub(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}", one, value)
            if new == value:
                break
            value = new
        return value
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    return value


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


KNOWN = {"name", "claim", "base", "model", "axes", "seeds", "compare", "match", "evals", "prepare", "profiles", "vars",
         "notes", "include"}
PROFILE_KEYS = {"vars", "base", "model", "seeds", "prepare", "evals", "axes"}


def read(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=UniqueKeyLoader)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping")
    unknown = set(doc) - KNOWN
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)} (known: {sorted(KNOWN)})")
    for profile, over in (doc.get("profiles") or {}).items():
        if profile not in PROFILES:
            raise ValueError(f"{path}: unknown profile '{profile}' (profiles: {', '.join(PROFILES)})")
        unknown = set(over or {}) - PROFILE_KEYS
        if unknown:
            raise ValueError(f"{path}: profile {profile}: unknown keys {sorted(unknown)}")
    return doc


def load(path, profile):
    """The config of `path` under `profile` (over its include's), with variables not yet substituted."""
    doc = read(path)
    layers = [doc]
    if "include" in doc:
        layers.insert(0, read(os.path.join(os.path.dirname(path), doc["include"])))
    cfg = {}
    for layer in layers:  # the included file's top level, then this file's
        cfg = merge(cfg, {k: v for k, v in layer.items() if k not in ("profiles", "include")})
    found = False
    for layer in layers:  # then the profile's sections, the included file's first
        over = (layer.get("profiles") or {}).get(profile)
        found = found or over is not None
        cfg = merge(cfg, over or {})
    if not found:
        raise ValueError(f"{path}: no profile '{profile}'")
    for key in ("name", "base", "model", "axes", "seeds"):
        if key not in cfg:
            raise ValueError(f"{path}: '{key}' is missing")
    if not re.fullmatch(r"[a-z0-9_-]+", cfg["name"]):
        raise ValueError(f"{path}: name '{cfg['name']}' must be lowercase letters, digits, - and _")
    for axis, values in cfg["axes"].items():
        if not isinstance(values, dict) or not values:
            raise ValueError(f"{path}: axis '{axis}' needs a mapping of named values")
        for value in values:
            if not re.fullmatch(r"[a-z0-9_]+", str(value)):
                raise ValueError(f"{path}: axis '{axis}': value '{value}' must be lowercase letters, digits and _ "
                                 "(cells are named by their values joined with -)")
    for cmp in cfg.get("compare", []):
        if len(cmp) != 3 or cmp[0] not in cfg["axes"] or cmp[1] not in cfg["axes"][cmp[0]] or \
                cmp[2] not in cfg["axes"][cmp[0]]:
            raise ValueError(f"{path}: compare {cmp}: expected [axis, value, value] of the axes")
    if "match" in cfg and cfg["match"][0] not in cfg["axes"]:
        raise ValueError(f"{path}: match names no axis: {cfg['match']}")
    cfg["profile"] = profile
    return cfg


def cells(cfg):
    """Every combination of one value per axis: [(name, {axis: value}, overrides)], in config order."""
    axes = list(cfg["axes"].items())
    out = []
    for combo in itertools.product(*[list(values.items()) for _, values in axes]):
        names = {axis: value for (axis, _), (value, _) in zip(axes, combo)}
        over = {}
        for _, (_, o) in zip(axes, combo):
            over = merge(over, o or {})
        out.append(("-".join(names.values()), names, over))
    return out


def resolve(cfg, overrides, seed):
    """A cell's model config (config.json keys to set over the base file) and run config."""
    model = merge(cfg["model"], overrides.get("model", {}))
    run = merge(cfg["base"], {k: v for k, v in overrides.items() if k != "model"})
    run["seed"] = seed
    return model, run


def run_hash(model_json, run):
    """The key of a run: its model config's text and its run config, minus run_dir."""
    key = {"model": model_json, "run": {k: v for k, v in run.items() if k != "run_dir"}}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
