#!/usr/bin/env python3
"""Reads gemmakd's resolved run config (run_dir/config.yaml) with PyYAML, as a
user's script would, and checks it against the run config train was given:

- no mapping repeats a key (PyYAML's own loaders keep the last one silently);
- one mapping per section, holding every key of that section and no other;
- each value has the type its key's reader gives it (a number written as
  `1e-08` is a string to a YAML 1.1 reader such as PyYAML);
- each value is the one the given run config and its command-line overrides
  set (read here with PyYAML too), and the documented default elsewhere.

    python3 tests/cli/resolved_config.py GIVEN.yaml WRITTEN.yaml [section.key=value ...]

Prints OK, or one line per difference and exits 1.
"""
import sys

import yaml

# Every key of a run config: its type and default (README "Training"; train/run_config.c).
# init_seed None: the run's seed.
SCHEMA = {
    "run_dir": ("str", ""), "seed": ("int", 0), "threads": ("int", 0),
    "model.config": ("str", ""), "model.from": ("str", ""), "model.init_seed": ("int", None),
    "model.device": ("str", "cpu"), "model.precision": ("str", "fp32"),
    "data.train": ("paths", []), "data.val": ("paths", []), "data.seq_len": ("int", 0),
    "batch.size": ("int", 8), "batch.micro": ("int", 0),
    "train.steps": ("int", 0), "train.tokens": ("int", 0), "train.head_chunk": ("int", 1024),
    "train.max_bad_steps": ("int", 10),
    "optim.name": ("str", "adamw"), "optim.lr": ("float", 3e-4), "optim.betas": ("pair", [0.9, 0.95]),
    "optim.eps": ("float", 1e-8), "optim.weight_decay": ("float", 0.1), "optim.grad_clip": ("float", 1.0),
    "schedule.name": ("str", "cosine"), "schedule.warmup": ("int", 0), "schedule.min_lr_ratio": ("float", 0.1),
    "schedule.decay_fraction": ("float", 0.2),
    "teacher.model": ("str", ""), "teacher.cache": ("str", ""), "teacher.device": ("str", ""),
    "teacher.precision": ("str", ""),
    "kd.loss": ("str", "forward_kl"), "kd.sparse": ("str", "auto"), "kd.alpha": ("float", 1.0),
    "kd.temperature": ("float", 1.0), "kd.beta": ("float", 0.5), "kd.t2_scale": ("bool", False),
    "kd.seq_kd": ("bool", False), "kd.on_policy.fraction": ("float", 0.0), "kd.on_policy.prompts": ("paths", []),
    "kd.on_policy.tokenizer": ("str", ""), "kd.on_policy.max_new_tokens": ("int", 64),
    "kd.on_policy.temperature": ("float", 1.0), "kd.on_policy.top_p": ("float", 1.0),
    "eval.every": ("int", 0), "eval.tokens": ("int", 0),
    "checkpoint.every": ("int", 0), "checkpoint.keep": ("int", 3),
    "log.every": ("int", 1), "ema.decay": ("float", 0.0), "average.last_k": ("int", 0),
    "parallel.zero": ("int", 1),
}


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with a key given twice."""

    def construct_mapping(self, node, deep=False):
        first = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in first:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first on line {first[key] + 1})", key_node.start_mark)
            first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=UniqueKeyLoader)


def flatten(doc, prefix=""):
    """{"optim": {"lr": x}, "seed": 1} -> {"optim.lr": x, "seed": 1} (sections are the mappings, and nest)."""
    flat = {}
    for key, value in doc.items():
        path = prefix + str(key)
        if isinstance(value, dict) and path not in SCHEMA:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def as_type(kind, value):
    """A value of the given run config as gemmakd reads it: by its key's type, whatever
    type PyYAML gave the scalar (gemmakd reads `2e-3` as a number, YAML 1.1 as a string)."""
    if kind == "str":
        return "" if value is None else str(value)
    if kind == "int":
        number = float(value)
        if number != int(number):
            raise ValueError(f"{value!r} is not an integer")
        return int(number)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return bool(value)
    if kind == "paths":
        return [] if value is None else [str(v) for v in ([value] if isinstance(value, str) else value)]
    return [float(v) for v in value]  # pair


def expected_values(given, overrides):
    values = {key: default for key, (_, default) in SCHEMA.items()}
    for key, value in flatten(given).items():
        values[key] = as_type(SCHEMA[key][0], value)
    for override in overrides:
        key, _, text = override.partition("=")
        values[key] = as_type(SCHEMA[key][0], yaml.safe_load(text) if text else None)
    if values["model.init_seed"] is None or values["model.init_seed"] < 0:
        values["model.init_seed"] = values["seed"]
    return values


def has_type(kind, value):
    if kind == "pair":
        return isinstance(value, list) and len(value) == 2 and all(type(v) is float for v in value)
    if kind == "paths":
        return isinstance(value, list) and all(type(v) is str for v in value)
    return type(value) is {"str": str, "int": int, "float": float, "bool": bool}[kind]


def layout_problems(doc, prefix=""):
    """Sections that are not one mapping of exactly their keys and subsections."""
    problems = []
    names = {key[len(prefix):].split(".")[0] for key in SCHEMA if key.startswith(prefix)}
    for name in sorted(names):
        path = prefix + name
        if path in SCHEMA:
            if name not in doc:
                problems.append(f"{path}: missing")
        elif not isinstance(doc.get(name), dict):
            problems.append(f"{path}: not a mapping ({doc.get(name)!r})")
        else:
            problems += layout_problems(doc[name], path + ".")
    extra = set(doc) - names
    if extra:
        problems.append(f"unexpected keys {sorted(extra)} in {prefix[:-1] or 'the top level'}")
    return problems


def main():
    given_path, written_path, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        written = load(written_path)
    except yaml.YAMLError as e:
        sys.exit(f"{written_path}: {e}")
    if not isinstance(written, dict):
        sys.exit(f"{written_path}: not a mapping")
    problems = layout_problems(written)
    want = expected_values(load(given_path), overrides)
    flat = flatten(written)
    for key, (kind, _) in SCHEMA.items():
        if key not in flat:
            continue
        got = flat[key]
        if not has_type(kind, got):
            problems.append(f"{key}: {got!r} is a {type(got).__name__}, not a {kind}")
        elif got != want[key]:
            problems.append(f"{key}: {got!r}, expected {want[key]!r}")
    if problems:
        print(f"{written_path}: " + "; ".join(problems))
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
