"""gpugrad.save / gpugrad.load: variables and optimizer state in one .npz file.

The file is a plain numpy .npz (np.load reads it without gpugrad; no pickles):

* ``__gpugrad_checkpoint__``: the format version (1).
* ``variables/<key>``: each variable's value, its dtype exactly (float32 stays float32).
* with an optimizer: ``optimizer/__class__`` (e.g. 'AdamOptimizer'), ``optimizer/iter``, and per
  variable that has state ``optimizer/<key>/step`` and ``optimizer/<key>/<slot>`` (the names
  of Optimizer.get_weights, with the checkpoint key in place of the variable name).

``<key>`` is the variable's name for a model or a list of variables, or the dict key for a
dict, so a dict {'w': w, ...} loads into variables whatever their names are. Values are
written and read as raw bytes: a load restores them bitwise, on either backend.

load validates everything (every variable present, no extra one, shapes, dtypes, the
optimizer's kind and state) and copies the new values to the device before it assigns
anything: a file from another model raises naming the first mismatch and changes nothing.
"""
from __future__ import annotations

import os
import zipfile
from typing import Any, Mapping, Sequence, Union

import numpy as np

from gpugrad.api import ops as O
from gpugrad.training.optimizers import Optimizer
from gpugrad.api.variables import Variable

FORMAT = 1
_MARK = "__gpugrad_checkpoint__"
_VARS = "variables/"
_OPT = "optimizer/"
_CLASS = "optimizer/__class__"

Model = Union[Sequence[Variable], Mapping[str, Variable], Any]


def _variables(who: str, model: Model) -> dict[str, Variable]:
    """The checkpoint key -> variable for a model, a list of variables or a dict of them."""
    if isinstance(model, Variable):
        model = [model]
    if isinstance(model, Mapping):
        pairs = list(model.items())
    elif isinstance(model, (list, tuple)):
        pairs = [(getattr(v, "name", None), v) for v in model]
    elif hasattr(model, "trainable_variables"):
        pairs = [(v.name, v) for v in model.trainable_variables]
    else:
        raise TypeError(f"{who}: expected a model (anything with trainable_variables, such as "
                        f"tf.nn.Sequential or Dense), a list of variables or a dict name -> "
                        f"variable; got {type(model).__name__}.")
    out: dict[str, Variable] = {}
    for key, var in pairs:
        if not isinstance(var, Variable):
            raise TypeError(f"{who}: {key!r} is {type(var).__name__}, not a variable "
                            "(tf.variable(...)); only variables are saved and loaded.")
        if not isinstance(key, str) or not key:
            raise TypeError(f"{who}: checkpoint keys must be non-empty strings, got {key!r}.")
        if var.disposed:
            raise ValueError(f"{who}: variable {key!r} was disposed.")
        if key in out:
            raise ValueError(f"{who}: two variables under the key {key!r}; pass a dict to name them apart.")
        out[key] = var
    return out


def _check_optimizer(who: str, optimizer: Any) -> None:
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"{who}: optimizer must be a tf.train optimizer, got {type(optimizer).__name__}.")


def save(path: str | os.PathLike, variables_or_model: Model, optimizer: Optimizer | None = None) -> None:
    """Write the variables (and the optimizer's state for them) to path, an .npz file written
    exactly there (no suffix added). The file appears complete or not at all: it is written
    beside path and renamed over it."""
    who = "gpugrad.save"
    variables = _variables(who, variables_or_model)
    _check_optimizer(who, optimizer)
    arrays: dict[str, np.ndarray] = {_MARK: np.array(FORMAT)}
    for key, var in variables.items():
        arrays[_VARS + key] = var.numpy()
    if optimizer is not None:
        key_of = {id(v): k for k, v in variables.items()}
        arrays[_CLASS] = np.array(type(optimizer).__name__)
        arrays[_OPT + "iter"] = np.array(optimizer.iterations, dtype=np.int64)
        for var, (step, slots) in optimizer._state_by_variable().items():
            key = key_of.get(id(var))
            if key is None:   # state for a variable outside this model: not this file's business
                continue
            arrays[f"{_OPT}{key}/step"] = np.array(step, dtype=np.int64)
            for slot, t in slots.items():
                arrays[f"{_OPT}{key}/{slot}"] = t.numpy()
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read(who: str, path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{who}: {path} is not a gpugrad checkpoint (.npz written by "
                         f"gpugrad.save): {e}") from e
    if _MARK not in data:
        raise ValueError(f"{who}: {path} is an .npz file but not a gpugrad checkpoint (it has no "
                         f"{_MARK!r} entry); write it with gpugrad.save.")
    if int(data[_MARK]) != FORMAT:
        raise ValueError(f"{who}: {path} is checkpoint format {int(data[_MARK])}; this gpugrad "
                         f"reads format {FORMAT}.")
    return data


def _describe(shape: tuple, dtype: str) -> str:
    return f"shape {list(shape)}, {dtype}"


def load(path: str | os.PathLike, variables_or_model: Model, optimizer: Optimizer | None = None) -> None:
    """Restore what save wrote into the variables (and the optimizer's state), bitwise. The
    file must hold exactly these variables, with their shapes and dtypes; otherwise this raises
    naming the first mismatch (missing, extra, shape, dtype) and changes nothing. With an
    optimizer, the file must hold state from the same kind of optimizer; it replaces the
    optimizer's whole state (a variable without state in the file starts afresh)."""
    who = "gpugrad.load"
    variables = _variables(who, variables_or_model)
    _check_optimizer(who, optimizer)
    path = os.fspath(path)
    data = _read(who, path)
    in_file = [k[len(_VARS):] for k in data if k.startswith(_VARS)]
    for key, var in variables.items():
        if _VARS + key not in data:
            others = [k for k in in_file if k not in variables]
            hint = f" It holds {others[:5]} that the model lacks." if others else ""
            raise ValueError(f"{who}: {path} has no variable {key!r} ({_describe(var.shape, var.dtype)}); "
                             f"is it from another model?{hint}")
        array = data[_VARS + key]
        if tuple(array.shape) != tuple(var.shape):
            raise ValueError(f"{who}: variable {key!r} has shape {list(array.shape)} in {path} but "
                             f"{list(var.shape)} in the model; the file is from another model.")
        if array.dtype.name != var.dtype:
            raise TypeError(f"{who}: variable {key!r} is {array.dtype.name} in {path} but {var.dtype} "
                            "in the model; build the model with the saved dtype.")
    extra = [k for k in in_file if k not in variables]
    if extra:
        raise ValueError(f"{who}: {path} holds variable {extra[0]!r} "
                         f"({_describe(data[_VARS + extra[0]].shape, data[_VARS + extra[0]].dtype.name)}) "
                         f"that the model lacks; the file is from another model (or pass the "
                         "variables to load as a dict that includes it).")
    commit_optimizer = _stage_optimizer(who, path, data, variables, optimizer) if optimizer else None
    # Device copies of every new value before the first assign: a failure here changes nothing.
    staged = [(var, O.tensor(data[_VARS + key], dtype=var.dtype)) for key, var in variables.items()]
    for _, t in staged:
        t.realize()
    for var, t in staged:
        var.assign(t)
    if commit_optimizer is not None:
        commit_optimizer()


def _stage_optimizer(who: str, path: str, data: dict, variables: dict[str, Variable],
                     optimizer: Optimizer):
    saved_class = str(data[_CLASS]) if _CLASS in data else None
    if saved_class is None:
        raise ValueError(f"{who}: {path} holds no optimizer state (it was saved without an "
                         "optimizer); call load without optimizer=.")
    if saved_class != type(optimizer).__name__:
        raise ValueError(f"{who}: {path} holds {saved_class} state but the optimizer is "
                         f"{type(optimizer).__name__}; their slots differ.")
    suffixes = ("step", *optimizer.slot_names_public())
    entries: dict[Variable, dict[str, Any]] = {}
    for name, value in data.items():
        if not name.startswith(_OPT) or name in (_CLASS, _OPT + "iter"):
            continue
        key, _, suffix = name[len(_OPT):].rpartition("/")
        if key not in variables:
            raise ValueError(f"{who}: {path} holds optimizer state for variable {key!r} that the "
                             "model lacks; the file is from another model.")
        if suffix not in suffixes:
            raise ValueError(f"{who}: {path} holds the unknown optimizer entry {name!r}; "
                             f"{saved_class} entries are {list(suffixes)}.")
        entries.setdefault(variables[key], {})[suffix] = value
    return optimizer._stage_restore(who, data.get(_OPT + "iter", -1), entries)
