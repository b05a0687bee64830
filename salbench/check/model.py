"""Who produced an entry's maps: the model identity ``salbench check`` verifies.

A results entry names the model that produced its maps: a registered name, its options,
its checkpoint (path and SHA-256). ``check`` verifies that identity as far as this
machine allows:

* the name is a registered model, built-in or plugin (:func:`model_audit`; part of the
  cheap audit, so the leaderboard marks an unknown name too): else an error;
* the model is created with the recorded options and checkpoint: options it refuses are
  an error;
* a recorded checkpoint is looked for at its recorded path (beside the entry, then from the
  working directory) and in the ``--checkpoints`` folders, by SHA-256. The file with the
  recorded SHA-256 is used; a file at the recorded path with another hash, and none with the
  recorded one, is an error (the entry claims weights that are not these);
* the model is re-run on a seeded sample of the entry's images (:class:`RerunPolicy`:
  default 8, ``--rerun all`` for every image) and its maps, rounded as the writer rounds a
  model's maps (:func:`~salbench.results.quantise_map`), must equal the stored maps exactly:
  else an error naming the image.

Where the checkpoint is not available (weights that were not kept: the entry records their
hash only), or a model that needs trained weights records none, the outcome is "model not
verified": the scores are recomputed, but the entry is never "ok". Maps a user brought
(``salbench eval --predictions``: ``model.source == "predictions"``) have no model to re-run:
"predictions, no model".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from salbench.check.report import ModelCheck

#: Images re-run per entry unless ``--rerun`` says otherwise.
DEFAULT_RERUN = 8
#: Images per ``model.predict`` call of a re-run.
RERUN_BATCH = 32
PREDICTIONS_NO_MODEL = "predictions, no model"
_WEIGHT_SUFFIXES = (".safetensors", ".fit.json")


class ModelIdentityError(Exception):
    """The entry's model cannot be what it records (the message says why): an error, never rewritten."""


@dataclass(frozen=True)
class RerunPolicy:
    """How ``check`` re-runs models: ``n`` images per entry (None: all; 0: none), sampled with ``seed``.

    ``checkpoint_dirs``: folders searched (recursively) for checkpoints by SHA-256, besides
    each entry's recorded path.
    """

    n: int | None = DEFAULT_RERUN
    seed: int = 0
    checkpoint_dirs: tuple[Path, ...] = ()

    @staticmethod
    def parse_n(value: str) -> int | None:
        """``--rerun`` as given: ``all`` or an integer >= 0.

        Raises
        ------
        ValueError
            Anything else.
        """
        text = str(value).strip().lower()
        if text == "all":
            return None
        try:
            n = int(text)
        except ValueError:
            n = -1
        if n < 0:
            raise ValueError(f"--rerun must be 'all' or an integer >= 0, not {value!r}")
        return n

    def describe(self) -> str:
        return "every image" if self.n is None else f"{self.n} images per entry (sample seed {self.seed})"


def is_predictions(result: Mapping[str, Any]) -> bool:
    """Whether the entry scores maps a user brought (``salbench eval --predictions``), not a model's."""
    return result["model"].get("source") == "predictions"


def model_audit(result: Mapping[str, Any]) -> str | None:
    """The problem with the entry's model name, without creating it (cheap), or None.

    A model entry must name a registered model (built-in or plugin); a plugin that is
    installed but fails to import is named as such.
    """
    if is_predictions(result):
        return None
    from salbench.models import default_registry

    name = result["model"]["name"]
    registry = default_registry()
    if name in registry.names():
        return None
    if name in registry.failures:
        return f"model {name!r} is registered but its plugin failed to load: {registry.failures[name]}"
    return (f"model {name!r} is not a registered model (built-in or plugin) here: the entry cannot have been "
            "produced by it as recorded (install the plugin that provides it)")


def _sha256(path: Path, cache: dict) -> str:
    from salbench.io.digest import file_sha256

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    hashes = cache.setdefault("_sha256", {})
    if key not in hashes:
        hashes[key] = file_sha256(path)
    return hashes[key]


def find_checkpoint(record: Mapping[str, Any], entry_dir: Path, policy: RerunPolicy, cache: dict) -> Path | None:
    """The file holding the recorded checkpoint (by SHA-256), or None when it is not available here.

    Raises
    ------
    ModelIdentityError
        A file at the recorded path hashes to something else and no file has the recorded hash.
    """
    from salbench.models._weights import resolve_checkpoint

    sha = record.get("sha256")
    recorded = record.get("path")
    candidates = []
    if isinstance(recorded, str) and recorded:
        p = Path(recorded).expanduser()
        candidates = [p] if p.is_absolute() else [entry_dir / p, Path.cwd() / p]
    other = None
    for c in candidates:
        try:
            f = resolve_checkpoint(c)
        except (FileNotFoundError, ValueError, OSError):
            continue
        got = _sha256(f, cache)
        if got == sha:
            return f
        other = other or (f, got)
    for folder in policy.checkpoint_dirs:
        for f in sorted(Path(folder).rglob("*")):
            if f.is_file() and f.name.endswith(_WEIGHT_SUFFIXES) and _sha256(f, cache) == sha:
                return f
    if other is not None:
        raise ModelIdentityError(
            f"checkpoint {other[0]} (the recorded path) has sha256 {other[1][:16]}..., the entry records "
            f"{str(sha)[:16]}...: these are not the weights that produced the maps (re-run salbench eval)")
    return None


class PreparedModel:
    """The entry's model created as recorded, or the outcome that says why it is not re-run."""

    def __init__(self, *, model=None, key: str = "", outcome: ModelCheck | None = None):
        self.model, self.key, self.outcome = model, key, outcome


def prepare(result: Mapping[str, Any], path: Path, policy: RerunPolicy, cache: dict) -> PreparedModel:
    """Create the entry's model as recorded (no data needed); see the module docstring.

    Raises
    ------
    ModelIdentityError
        The options or checkpoint are refused, or the checkpoint at the recorded path differs.
    """
    model_record = result["model"]
    name = model_record["name"]
    if is_predictions(result):
        return PreparedModel(outcome=ModelCheck("predictions", _predictions_detail(name)))
    options = model_record.get("options") or {}
    if not isinstance(options, Mapping):
        raise ModelIdentityError(f"model.options must be an object, not {options!r}")
    ckpt = model_record.get("checkpoint")
    if ckpt is not None and not (isinstance(ckpt, Mapping) and isinstance(ckpt.get("sha256"), str)):
        raise ModelIdentityError(f"model.checkpoint must be null or {{path, sha256}}, not {ckpt!r}")
    found = find_checkpoint(ckpt, path.parent, policy, cache) if ckpt is not None else None
    if ckpt is not None and found is None:
        why = (f"model not verified: checkpoint {ckpt.get('path')!r} (sha256 {ckpt['sha256'][:16]}...) is not "
               "available here (give its folder with --checkpoints DIR)")
        if options:  # the options can still be checked
            _create(name, None, options)
        return PreparedModel(outcome=ModelCheck("not verified", why))
    key = json.dumps([name, options, None if found is None else ckpt["sha256"]], sort_keys=True, default=str)
    held = cache.get("_model")
    if held is not None and held.key == key:
        return held
    cache.pop("_model", None)  # one model at a time: a network's weights are hundreds of MB
    model = _create(name, found, options)
    if getattr(model, "needs_training", False):
        return PreparedModel(outcome=ModelCheck(
            "not verified", f"model not verified: {name} needs trained weights and the entry records no checkpoint"))
    if policy.n == 0:
        return PreparedModel(outcome=ModelCheck("not verified", "model not verified: not re-run (--rerun 0)"))
    prepared = PreparedModel(model=model, key=key)
    cache["_model"] = prepared
    return prepared


def _create(name: str, checkpoint: Path | None, options: Mapping[str, Any]):
    from salbench.models import create_model

    try:
        return create_model(name, checkpoint=None if checkpoint is None else str(checkpoint), **dict(options))
    except Exception as exc:  # noqa: BLE001 - any refusal is the entry's problem, in one line
        with_ckpt = f" and checkpoint {checkpoint}" if checkpoint is not None else ""
        raise ModelIdentityError(f"model {name} cannot be created with the recorded options "
                                 f"{json.dumps(dict(options), sort_keys=True, default=str)}{with_ckpt}: "
                                 f"{type(exc).__name__}: {exc}") from None


def _predictions_detail(name: str) -> str:
    from salbench.models import default_registry

    if name in default_registry().names():
        return (f"{PREDICTIONS_NO_MODEL} (named like the registered model {name!r}; the maps are the user's, "
                "not re-run)")
    return PREDICTIONS_NO_MODEL


def sample(names: list[str], policy: RerunPolicy) -> list[int]:
    """Positions in ``names`` to re-run: all, or ``policy.n`` drawn without replacement with ``policy.seed``, sorted."""
    if policy.n is None or policy.n >= len(names):
        return list(range(len(names)))
    rng = np.random.default_rng(policy.seed)
    return sorted(int(i) for i in rng.choice(len(names), size=policy.n, replace=False))


def rerun(prepared: PreparedModel, result: Mapping[str, Any], path: Path, dataset, policy: RerunPolicy,
          cache: dict) -> ModelCheck:
    """Re-run the prepared model on a sample of the entry's images and compare with the stored maps.

    Raises
    ------
    ModelIdentityError
        A re-run map differs from the stored one (the message names the image and how).
    """
    if prepared.outcome is not None:
        return prepared.outcome
    from salbench.evaluate.feeds import predict_chunk, quantise_log_density
    from salbench.io.map_store import open_stored_predictions
    from salbench.results import quantise_map

    name = result["model"]["name"]
    pred = result["predictions"]
    if pred.get("kind", "stored") != "stored":
        return ModelCheck("not verified", "model not verified: its maps are a folder of files, not maps salbench "
                                          "stored from the model")
    specific = result.get("maps") == "metric-specific"  # stored: the model's log-densities, float32
    if specific and result["model"].get("log_density_from"):
        return ModelCheck("not verified", "model not verified: its log-densities were derived from "
                                          f"{result['model']['log_density_from']}, not predicted by the model")
    names = list(result["image_names"])
    picked = sample(names, policy)
    key = json.dumps([prepared.key, cache.get("_dataset_key"), pred["sha256"], picked])
    done = cache.setdefault("_reruns", {})
    if key in done:  # one model's maps scored under several protocols: re-run once
        return done[key]
    index = {n: i for i, n in enumerate(dataset.names)}
    with open_stored_predictions(path.parent / pred["file"]) as stored:
        position = {n: j for j, n in enumerate(stored.names)}
        for b in range(0, len(picked), RERUN_BATCH):
            batch = [names[j] for j in picked[b:b + RERUN_BATCH]]
            records = [dataset[index[n]] for n in batch]
            if specific:
                maps = predict_chunk(prepared.model, records, RERUN_BATCH, method="predict_log_density",
                                     dtype=np.float64)
            else:
                maps = predict_chunk(prepared.model, records, RERUN_BATCH)
            for image, m in zip(batch, maps):
                label = f"re-run prediction of {name} for {image}"
                again = quantise_log_density(m, label) if specific else quantise_map(m, label)
                _compare(name, image, again, stored.load(position[image]))
    shown = f"all {len(names)} images" if len(picked) == len(names) else \
        f"{len(picked)} of {len(names)} images (sample seed {policy.seed})"
    check = ModelCheck("re-run", f"model {name} re-run on {shown} reproduced the stored maps exactly",
                       images=tuple(names[j] for j in picked), seed=policy.seed)
    done[key] = check
    return check


def _compare(name: str, image: str, again: np.ndarray, stored: np.ndarray) -> None:
    if again.shape != stored.shape:
        raise ModelIdentityError(f"model {name} re-run on {image} gives a {again.shape[0]}x{again.shape[1]} map, "
                                 f"the stored map is {stored.shape[0]}x{stored.shape[1]}: the maps were not "
                                 "produced by the recorded model, options and checkpoint")
    a, s = np.asarray(again, dtype=np.float64), np.asarray(stored, dtype=np.float64)
    if not np.array_equal(a, s):
        differ = int(np.count_nonzero(a != s))
        raise ModelIdentityError(
            f"model {name} re-run on {image} gives other maps than stored ({differ} of {a.size} values differ, "
            f"largest difference {float(np.max(np.abs(a - s))):.3g} after float16 rounding): the maps were not "
            "produced by the recorded model, options and checkpoint")
