/* The graph node as a C type: gpugrad/core/nodes.py's PyNode, field for field.
 *
 * Why C: tracing f makes one node per op, and a node's Python __init__ (nine slot stores, the
 * key tuple, a dict lookup) was most of what an op cost in a cached gradient call. The key
 * table, the id counter and interning are nodes.py's, handed over by configure(); the rules
 * for an op's and a constant's key are PyNode's, written again here, and tests/test_nodes.py
 * checks that both types give the same fields and keys for the same structures.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    PyObject_HEAD
    PyObject *op, *src, *arg, *shape, *dtype, *buf;
    long long id, key, lo;
    PyObject *weakreflist;
} Node;

/* nodes.py's objects, set by configure() before any node is made */
static PyObject *ids_iter, *keys_table, *intern_fn;
static long long NO_OP;
static PyObject *buffer_str, *empty_tuple;
static PyTypeObject NodeType;

static int next_id(long long *out) {
    if (ids_iter == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "gpugrad.core._nodes is used before configure()");
        return -1;
    }
    PyObject *i = PyIter_Next(ids_iter);
    if (i == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "the node id counter stopped");
        return -1;
    }
    *out = PyLong_AsLongLong(i);
    Py_DECREF(i);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int read_int_attr(PyObject *o, const char *name, long long *out) {
    PyObject *v = PyObject_GetAttrString(o, name);
    if (v == NULL) return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* A source's key and lo: read from the struct for a node of this type, by attribute
 * otherwise (a PyNode, as the tests mix them). */
static int source_fields(PyObject *s, long long *key, long long *lo) {
    if (PyObject_TypeCheck(s, &NodeType)) {
        *key = ((Node *)s)->key;
        *lo = ((Node *)s)->lo;
        return 0;
    }
    if (read_int_attr(s, "key", key) < 0 || read_int_attr(s, "lo", lo) < 0) return -1;
    return 0;
}

static int is_ascii(PyObject *s, const char *text) {
    return s != NULL && PyUnicode_Check(s) && PyUnicode_CompareWithASCIIString(s, text) == 0;
}

/* A node made by tp_new without __init__ (Tensor.__new__(Tensor)) has no fields: the fast
 * paths leave it to the Python code, which raises AttributeError. */
static int initialized(PyObject *x) {
    Node *n = (Node *)x;
    return n->op != NULL && n->src != NULL && n->shape != NULL && n->dtype != NULL;
}

/* A cache in front of the key table for the ops tracing makes over and over: (op, arg,
 * shape, dtype, the sources' keys) -> key, matched by the identity of the four objects (held
 * here, so an address is never reused by another object while its entry lives) and the
 * values of the keys. Identical objects make an identical table key, so a hit gives what the
 * table lookup would, without building, hashing and comparing that tuple (most of an op's
 * cost). The table's clear() forgets the cache too (forget_keys), so the two never disagree.
 * Only args that hold nothing large (None, a tuple of ints) are kept. */
#define KEY_CACHE_SIZE 1024
typedef struct {
    PyObject *op, *arg, *shape, *dtype;   /* NULL: an empty entry */
    long long a, b, key;
    int n;
} KeyEntry;
static KeyEntry key_cache[KEY_CACHE_SIZE];

static size_t key_slot(PyObject *op, PyObject *arg, PyObject *shape, PyObject *dtype, int n,
                       long long a, long long b) {
    unsigned long long h = (unsigned long long)(uintptr_t)op * 0x9E3779B97F4A7C15ULL;
    h ^= ((unsigned long long)(uintptr_t)arg + 0x632BE59BD9B4E019ULL) * 0xC2B2AE3D27D4EB4FULL;
    h ^= ((unsigned long long)(uintptr_t)shape >> 4) * 0x165667B19E3779F9ULL;
    h ^= ((unsigned long long)(uintptr_t)dtype >> 4) * 0x27D4EB2F165667C5ULL;
    h ^= (unsigned long long)a * 0xFF51AFD7ED558CCDULL + (unsigned long long)(b + n) * 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 29;
    return (size_t)(h % KEY_CACHE_SIZE);
}

static int cacheable_arg(PyObject *arg) {
    if (arg == Py_None) return 1;
    if (!PyTuple_CheckExact(arg) || PyTuple_GET_SIZE(arg) > 32) return 0;
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(arg); j++)
        if (!PyLong_CheckExact(PyTuple_GET_ITEM(arg, j))) return 0;
    return 1;
}

static void key_entry_set(KeyEntry *e, PyObject *op, PyObject *arg, PyObject *shape,
                          PyObject *dtype, int n, long long a, long long b, long long key) {
    KeyEntry old = *e;   /* released after the entry is whole: a dealloc sees no half entry */
    Py_INCREF(op); Py_INCREF(arg); Py_INCREF(shape); Py_INCREF(dtype);
    e->op = op; e->arg = arg; e->shape = shape; e->dtype = dtype;
    e->n = n; e->a = a; e->b = b; e->key = key;
    Py_XDECREF(old.op); Py_XDECREF(old.arg); Py_XDECREF(old.shape); Py_XDECREF(old.dtype);
}

/* forget_keys(): empties the cache (the key table was cleared) */
static PyObject *forget_keys(PyObject *module, PyObject *unused) {
    for (size_t j = 0; j < KEY_CACHE_SIZE; j++) {
        KeyEntry old = key_cache[j];
        key_cache[j] = (KeyEntry){0};
        Py_XDECREF(old.op); Py_XDECREF(old.arg); Py_XDECREF(old.shape); Py_XDECREF(old.dtype);
    }
    Py_RETURN_NONE;
}

/* The key of an op node: its interned structure, or its own id where the structure must
 * never match another (a custom gradient; an arg that cannot be hashed). -1 with an error set
 * on failure. */
static long long op_key(PyObject *op, PyObject *src, PyObject *arg, PyObject *shape,
                        PyObject *dtype, long long i, long long *lo_out) {
    Py_ssize_t n = PyTuple_GET_SIZE(src);
    long long sks[2] = {0, 0};
    KeyEntry *entry = NULL;
    if (n <= 2) {
        long long lo = i;
        for (Py_ssize_t j = 0; j < n; j++) {
            long long sl;
            if (source_fields(PyTuple_GET_ITEM(src, j), &sks[j], &sl) < 0) return -1;
            if (sl < lo) lo = sl;
        }
        entry = &key_cache[key_slot(op, arg, shape, dtype, (int)n, sks[0], sks[1])];
        if (entry->op == op && entry->arg == arg && entry->shape == shape &&
                entry->dtype == dtype && entry->n == n && entry->a == sks[0] && entry->b == sks[1]) {
            *lo_out = lo;
            return entry->key;
        }
    }
    PyObject *k = PyTuple_New(4 + n);
    if (k == NULL) return -1;
    Py_INCREF(op); PyTuple_SET_ITEM(k, 0, op);
    Py_INCREF(arg); PyTuple_SET_ITEM(k, 1, arg);
    Py_INCREF(dtype); PyTuple_SET_ITEM(k, 2, dtype);
    Py_INCREF(shape); PyTuple_SET_ITEM(k, 3, shape);
    long long lo = i;
    for (Py_ssize_t j = 0; j < n; j++) {
        long long sk, sl;
        PyObject *kk;
        if (source_fields(PyTuple_GET_ITEM(src, j), &sk, &sl) < 0 ||
                (kk = PyLong_FromLongLong(sk)) == NULL) {
            Py_DECREF(k);
            return -1;
        }
        PyTuple_SET_ITEM(k, 4 + j, kk);
        if (sl < lo) lo = sl;
    }
    *lo_out = lo;
    long long key;
    int shared = 1;   /* the table's key for the structure (not one of the node's own) */
    PyObject *found = PyDict_GetItemWithError(keys_table, k);   /* borrowed */
    if (found != NULL) {
        key = PyLong_AsLongLong(found);
    } else if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
            Py_DECREF(k);
            return -1;
        }
        PyErr_Clear();   /* an unhashable arg (a list, say): a key of its own */
        key = i;
        shared = 0;
    } else if (is_ascii(op, "custom_grad")) {
        key = i;         /* never shared, nor held by the table */
        shared = 0;
    } else {
        PyObject *r = PyObject_CallOneArg(intern_fn, k);
        if (r == NULL) {
            Py_DECREF(k);
            return -1;
        }
        key = PyLong_AsLongLong(r);
        Py_DECREF(r);
    }
    Py_DECREF(k);
    if (key == -1 && PyErr_Occurred()) return -1;
    if (shared && entry != NULL && cacheable_arg(arg))
        key_entry_set(entry, op, arg, shape, dtype, (int)n, sks[0], sks[1], key);
    return key;
}

/* nodes.py's const_key: ("C", the value, shape, dtype) interned, the value by repr where ==
 * would confuse values (0.0 and -0.0) or never match (NaN); -1 with an error set on failure */
static PyObject *c_str;   /* "C" */

static long long const_key(PyObject *arg, PyObject *shape, PyObject *dtype) {
    int truthy = PyObject_IsTrue(arg);
    if (truthy < 0) return -1;
    int self_equal = 0;
    if (truthy) {
        PyObject *eq = PyObject_RichCompare(arg, arg, Py_EQ);   /* (no identity shortcut) */
        if (eq == NULL) return -1;
        self_equal = PyObject_IsTrue(eq);
        Py_DECREF(eq);
        if (self_equal < 0) return -1;
    }
    PyObject *value = self_equal ? (Py_INCREF(arg), arg) : PyObject_Repr(arg);
    if (value == NULL) return -1;
    PyObject *k = PyTuple_Pack(4, c_str, value, shape, dtype);
    Py_DECREF(value);
    if (k == NULL) return -1;
    long long key;
    PyObject *found = PyDict_GetItemWithError(keys_table, k);   /* borrowed */
    if (found != NULL) {
        key = PyLong_AsLongLong(found);
    } else if (PyErr_Occurred()) {
        key = -1;
    } else {
        PyObject *r = PyObject_CallOneArg(intern_fn, k);
        key = r ? PyLong_AsLongLong(r) : -1;
        Py_XDECREF(r);
    }
    Py_DECREF(k);
    return key;
}

/* Sets every field of a node (its sources a tuple): nodes.py's PyNode.__init__. */
static int node_fill(Node *self, PyObject *op, PyObject *src, PyObject *arg, PyObject *shape,
                     PyObject *dtype) {
    Py_INCREF(op); Py_XSETREF(self->op, op);
    Py_INCREF(src); Py_XSETREF(self->src, src);
    Py_INCREF(arg); Py_XSETREF(self->arg, arg);
    Py_INCREF(shape); Py_XSETREF(self->shape, shape);
    Py_INCREF(dtype); Py_XSETREF(self->dtype, dtype);
    Py_INCREF(Py_None); Py_XSETREF(self->buf, Py_None);
    long long i;
    if (next_id(&i) < 0) return -1;
    self->id = i;
    if (PyTuple_GET_SIZE(src)) {
        long long lo = i;
        long long key = op_key(op, src, arg, shape, dtype, i, &lo);
        if (key == -1 && PyErr_Occurred()) return -1;
        self->key = key;
        self->lo = lo;
    } else if (is_ascii(op, "const")) {
        self->lo = NO_OP;
        long long key = const_key(arg, shape, dtype);
        if (key == -1 && PyErr_Occurred()) return -1;
        self->key = key;
    } else {
        self->lo = NO_OP;
        self->key = i;
    }
    return 0;
}

static int Node_init(Node *self, PyObject *args, PyObject *kwds) {
    if ((kwds != NULL && PyDict_GET_SIZE(kwds)) || PyTuple_GET_SIZE(args) != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "Node(op, src, arg, shape, dtype) takes 5 positional arguments");
        return -1;
    }
    PyObject *src = PyTuple_GET_ITEM(args, 1);
    if (!PyTuple_Check(src)) {
        PyErr_Format(PyExc_TypeError, "a node's sources are a tuple, got %.200s",
                     Py_TYPE(src)->tp_name);
        return -1;
    }
    return node_fill(self, PyTuple_GET_ITEM(args, 0), src, PyTuple_GET_ITEM(args, 2),
                     PyTuple_GET_ITEM(args, 3), PyTuple_GET_ITEM(args, 4));
}

static int Node_traverse(Node *self, visitproc visit, void *arg) {
    Py_VISIT(self->op);
    Py_VISIT(self->src);
    Py_VISIT(self->arg);
    Py_VISIT(self->shape);
    Py_VISIT(self->dtype);
    Py_VISIT(self->buf);
    return 0;
}

static int Node_clear(Node *self) {
    Py_CLEAR(self->op);
    Py_CLEAR(self->src);
    Py_CLEAR(self->arg);
    Py_CLEAR(self->shape);
    Py_CLEAR(self->dtype);
    Py_CLEAR(self->buf);
    return 0;
}

static void Node_dealloc(Node *self) {
    PyObject_GC_UnTrack(self);
    /* a long chain of nodes frees one by one, not by deep recursion */
    Py_TRASHCAN_BEGIN(self, Node_dealloc)
    if (self->weakreflist != NULL) PyObject_ClearWeakRefs((PyObject *)self);
    Node_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
    Py_TRASHCAN_END
}

static PyMemberDef Node_members[] = {
    /* a node is immutable but for its buffer (the engine realizes and disposes through it) */
    {"op", T_OBJECT_EX, offsetof(Node, op), READONLY, NULL},
    {"src", T_OBJECT_EX, offsetof(Node, src), READONLY, NULL},
    {"arg", T_OBJECT_EX, offsetof(Node, arg), READONLY, NULL},
    {"shape", T_OBJECT_EX, offsetof(Node, shape), READONLY, NULL},
    {"dtype", T_OBJECT_EX, offsetof(Node, dtype), READONLY, NULL},
    {"buf", T_OBJECT_EX, offsetof(Node, buf), 0, NULL},
    {"id", T_LONGLONG, offsetof(Node, id), READONLY, NULL},
    {"key", T_LONGLONG, offsetof(Node, key), READONLY, NULL},
    {"lo", T_LONGLONG, offsetof(Node, lo), READONLY, NULL},
    {NULL}
};

static PyTypeObject NodeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gpugrad.core._nodes.Node",
    .tp_doc = "A graph node (gpugrad/core/nodes.py's PyNode, in C).",
    .tp_basicsize = sizeof(Node),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Node_init,
    .tp_dealloc = (destructor)Node_dealloc,
    .tp_traverse = (traverseproc)Node_traverse,
    .tp_clear = (inquiry)Node_clear,
    .tp_members = Node_members,
    .tp_weaklistoffset = offsetof(Node, weakreflist),
};

/* make_leaf(cls, buf, shape, dtype): nodes.py's py_make_leaf */
static PyObject *make_leaf(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "make_leaf(cls, buf, shape, dtype) takes 4 arguments");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    if (!PyType_Check(args[0]) || !PyType_IsSubtype(cls, &NodeType)) {
        PyErr_SetString(PyExc_TypeError, "make_leaf: cls must be a subclass of Node");
        return NULL;
    }
    long long i;
    if (next_id(&i) < 0) return NULL;
    Node *t = (Node *)cls->tp_alloc(cls, 0);
    if (t == NULL) return NULL;
    Py_INCREF(buffer_str); t->op = buffer_str;
    Py_INCREF(empty_tuple); t->src = empty_tuple;
    Py_INCREF(Py_None); t->arg = Py_None;
    Py_INCREF(args[2]); t->shape = args[2];
    Py_INCREF(args[3]); t->dtype = args[3];
    Py_INCREF(args[1]); t->buf = args[1];
    t->id = t->key = i;
    t->lo = NO_OP;
    return (PyObject *)t;
}

/* tracked_leaf(cls, buf, shape, dtype): make_leaf, then tensor.py's track(t). Its common
 * case, no tidy scope open on any thread and no sweep of the registry due, is the one store
 * live[id(t)] = weakref(t), done here; otherwise track itself runs. */
static PyObject *live_dict, *sweep_at_list, *open_scopes_list, *track_fn;

static PyObject *tracked_leaf(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (track_fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tracked_leaf is used before configure_tracking()");
        return NULL;
    }
    PyObject *t = make_leaf(module, args, nargs);
    if (t == NULL) return NULL;
    int scopes = PyObject_IsTrue(PyList_GET_ITEM(open_scopes_list, 0));
    Py_ssize_t sweep_at = PyLong_AsSsize_t(PyList_GET_ITEM(sweep_at_list, 0));
    if (scopes < 0 || (sweep_at == -1 && PyErr_Occurred())) goto fail;
    if (scopes || PyDict_GET_SIZE(live_dict) + 1 > sweep_at) {
        PyObject *r = PyObject_CallOneArg(track_fn, t);
        if (r == NULL) goto fail;
        Py_DECREF(r);
        return t;
    }
    PyObject *ref = PyWeakref_NewRef(t, NULL);
    PyObject *key = ref ? PyLong_FromVoidPtr(t) : NULL;
    int err = key ? PyDict_SetItem(live_dict, key, ref) : -1;
    Py_XDECREF(key);
    Py_XDECREF(ref);
    if (err < 0) goto fail;
    return t;
fail:
    Py_DECREF(t);
    return NULL;
}

/* configure_tracking(live, sweep_at, open_scopes, track): tensor.py's registry */
static PyObject *configure_tracking(PyObject *module, PyObject *args) {
    PyObject *live, *sweep_at, *open_scopes, *track;
    if (!PyArg_ParseTuple(args, "O!O!O!O", &PyDict_Type, &live, &PyList_Type, &sweep_at,
                          &PyList_Type, &open_scopes, &track))
        return NULL;
    if (PyList_GET_SIZE(sweep_at) != 1 || PyList_GET_SIZE(open_scopes) != 1) {
        PyErr_SetString(PyExc_ValueError, "sweep_at and open_scopes are one-item lists");
        return NULL;
    }
    Py_INCREF(live); Py_XSETREF(live_dict, live);
    Py_INCREF(sweep_at); Py_XSETREF(sweep_at_list, sweep_at);
    Py_INCREF(open_scopes); Py_XSETREF(open_scopes_list, open_scopes);
    Py_INCREF(track); Py_XSETREF(track_fn, track);
    Py_RETURN_NONE;
}

/* buffers_of(refs): nodes.py's py_buffers_of, the buffer of each weakly named leaf */
static PyObject *buffers_of(PyObject *module, PyObject *refs) {
    PyObject *seq = PySequence_Fast(refs, "buffers_of: refs is a sequence of weak references");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t j = 0; out != NULL && j < n; j++) {
        PyObject *leaf = PyObject_CallNoArgs(PySequence_Fast_GET_ITEM(seq, j));
        PyObject *buf = NULL;
        if (leaf != NULL && leaf != Py_None) {
            if (PyObject_TypeCheck(leaf, &NodeType)) {
                buf = ((Node *)leaf)->buf;
                Py_XINCREF(buf);
            } else {
                buf = PyObject_GetAttrString(leaf, "buf");
            }
        }
        Py_XDECREF(leaf);
        if (buf == NULL && PyErr_Occurred()) {
            Py_CLEAR(out);
        } else if (buf == NULL || buf == Py_None) {   /* collected, or disposed */
            Py_XDECREF(buf);
            Py_DECREF(out);
            Py_DECREF(seq);
            Py_RETURN_NONE;
        } else {
            PyList_SET_ITEM(out, j, buf);
        }
    }
    Py_DECREF(seq);
    return out;
}

/* --- elementwise ops: the common case of gpugrad/api/ops/elementwise.py's _unary and _binary
 *
 * An ElementwiseOp wraps the op's Python function (``general``, the op's one definition) and
 * takes, without a Python frame, exactly the branch that function takes first: every operand
 * a tensor (a variable read as its value, by its _node()) of one shape and one float dtype (a
 * unary op: of any dtype but bool, a float one if the op needs it), none a constant, gives
 * the node at once. Two such tensors of different shapes that broadcast give what lax.apply
 * gives (broadcast_path). Everything else is a call of ``general``, with the same arguments
 * (the variables already read), so errors and the other branches are its. */

/* Two more ops take the same road, for the same reason (each is in most f):
 * KIND_SQUARE, square(x): mul's branch over (x, x);
 * KIND_REDUCE, sum(x) / max(x) / prod(x) with no axis: reductions.py's first branch, a float
 * tensor of rank 1 to 32 reduced over every axis (kept), then reshaped to a scalar;
 * KIND_POW, pow: the elementwise branch, and x ** 2 for the Python number 2 exactly, which
 * lax.apply_number makes mul(x, x) (_pow_shortcut) and so does this. */
enum { KIND_ELEMENTWISE, KIND_SQUARE, KIND_REDUCE, KIND_POW };

typedef struct {
    PyObject_HEAD
    PyObject *name, *general, *tensor_cls, *floats, *bool_, *dict;
    PyObject *tables;   /* KIND_REDUCE: (all axes, ones) of each rank */
    int arity, out_bool, needs_float, kind;
    vectorcallfunc vectorcall;
} ElementwiseOp;

static PyObject *reshape_str, *mul_str, *expand_str;   /* "reshape", "mul", "expand" */

static PyObject *node_str, *disposed_str, *pins_str;   /* "_node", "disposed", "pins" */
static PyObject *variable_cls, *trace_obj;   /* api/variables.py's Variable, tensor.py's trace */

/* The value a variable read gives inside a gradient call where this thread has read it
 * before: its pinned leaf (Variable._node's last branch); NULL without an error where that
 * is not the case (not disposed, but no call running or no pin yet: _node() decides). */
/* The pins of the replay (below) running f on this thread, if one is: trace.pins without
 * the thread-local lookup. A replay sets them around f and clears them after if still its
 * own; nothing changes trace.pins while f runs (nested gradient calls share them), and on
 * another thread the thread state differs, so the lookup is taken there. */
static PyThreadState *replay_thread;
static PyObject *replay_pins;   /* borrowed: the replay holds them while f runs */
/* The replay's own pins as an array, (variable, its list of leaves) each, borrowed from
 * replay_pins: the variables of var_list are found by a scan of a few pointers rather than
 * a dict lookup by a new int. An entry's list is never replaced (an assign appends to it). */
#define REPLAY_VARS 8
static PyObject *replay_vars[REPLAY_VARS], *replay_leaves[REPLAY_VARS];
static Py_ssize_t n_replay_vars;

static PyObject *pinned_value(PyObject *x) {
    PyObject *disposed = PyObject_GetAttr(x, disposed_str);
    if (disposed == NULL) return NULL;
    Py_DECREF(disposed);
    if (disposed != Py_False) return NULL;
    PyObject *pins;
    if (replay_pins != NULL && replay_thread == PyThreadState_Get()) {
        for (Py_ssize_t j = 0; j < n_replay_vars; j++) {
            if (replay_vars[j] == x) {
                PyObject *leaves = replay_leaves[j];
                Py_ssize_t m = PyList_GET_SIZE(leaves);
                if (m == 0) return NULL;
                PyObject *out = PyList_GET_ITEM(leaves, m - 1);
                Py_INCREF(out);
                return out;
            }
        }
        pins = replay_pins;
        Py_INCREF(pins);
    } else {
        pins = PyObject_GetAttr(trace_obj, pins_str);
    }
    if (pins == NULL) return NULL;
    PyObject *out = NULL;
    if (PyDict_CheckExact(pins)) {
        PyObject *id = PyLong_FromVoidPtr(x);
        PyObject *entry = id ? PyDict_GetItemWithError(pins, id) : NULL;   /* borrowed */
        Py_XDECREF(id);
        if (entry != NULL && PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) == 2) {
            PyObject *leaves = PyTuple_GET_ITEM(entry, 1);
            if (PyList_CheckExact(leaves) && PyList_GET_SIZE(leaves) > 0) {
                out = PyList_GET_ITEM(leaves, PyList_GET_SIZE(leaves) - 1);
                Py_INCREF(out);
            }
        }
    }
    Py_DECREF(pins);
    return out;
}

/* x itself, or a variable's current value (x._node()); a new reference */
static PyObject *operand(ElementwiseOp *self, PyObject *x) {
    if (Py_TYPE(x) != (PyTypeObject *)self->tensor_cls &&
            PyObject_TypeCheck(x, (PyTypeObject *)self->tensor_cls)) {
        if ((PyObject *)Py_TYPE(x) == variable_cls) {
            PyObject *leaf = pinned_value(x);
            if (leaf != NULL || PyErr_Occurred()) return leaf;
        }
        return PyObject_CallMethodNoArgs(x, node_str);
    }
    Py_INCREF(x);
    return x;
}

/* configure_variables(Variable, trace) */
static PyObject *configure_variables(PyObject *module, PyObject *args) {
    PyObject *cls, *tr;
    if (!PyArg_ParseTuple(args, "O!O", &PyType_Type, &cls, &tr)) return NULL;
    Py_INCREF(cls); Py_XSETREF(variable_cls, cls);
    Py_INCREF(tr); Py_XSETREF(trace_obj, tr);
    Py_RETURN_NONE;
}

/* 1 where x is a tensor that the fast branch takes, 0 where not, -1 on error */
static int fast_operand(ElementwiseOp *self, PyObject *x, int float_only) {
    if (Py_TYPE(x) != (PyTypeObject *)self->tensor_cls || !initialized(x)) return 0;
    Node *n = (Node *)x;
    if (is_ascii(n->op, "const")) return 0;
    if (float_only) return PySet_Contains(self->floats, n->dtype);
    return PyObject_RichCompareBool(n->dtype, self->bool_, Py_NE);
}

static PyObject *new_node(ElementwiseOp *self, PyObject *op, PyObject *src, PyObject *arg,
                          PyObject *shape, PyObject *dtype) {
    PyTypeObject *cls = (PyTypeObject *)self->tensor_cls;
    Node *t = (Node *)cls->tp_alloc(cls, 0);
    if (t == NULL) return NULL;
    if (node_fill(t, op, src, arg, shape, dtype) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

static PyObject *fast_path_binary(ElementwiseOp *self, PyObject *const *xs);

static PyObject *reduce_path(ElementwiseOp *self, PyObject *x) {
    if (Py_TYPE(x) != (PyTypeObject *)self->tensor_cls || !initialized(x)) return NULL;
    Node *n = (Node *)x;
    int ok = PySet_Contains(self->floats, n->dtype);
    Py_ssize_t rank = PyTuple_Check(n->shape) ? PyTuple_GET_SIZE(n->shape) : 0;
    PyObject *axes = PyTuple_GET_ITEM(self->tables, 0), *ones = PyTuple_GET_ITEM(self->tables, 1);
    if (ok <= 0 || rank < 1 || rank >= PyTuple_GET_SIZE(axes) || rank >= PyTuple_GET_SIZE(ones))
        return NULL;
    PyObject *src = PyTuple_Pack(1, x);
    PyObject *kept = src ? new_node(self, self->name, src, PyTuple_GET_ITEM(axes, rank),
                                    PyTuple_GET_ITEM(ones, rank), n->dtype) : NULL;
    Py_XDECREF(src);
    if (kept == NULL) return NULL;
    src = PyTuple_Pack(1, kept);
    Py_DECREF(kept);
    if (src == NULL) return NULL;
    PyObject *out = new_node(self, reshape_str, src, empty_tuple, empty_tuple, n->dtype);
    Py_DECREF(src);
    return out;
}

static PyObject *fast_path(ElementwiseOp *self, PyObject *const *xs) {
    /* NULL without an error: not the fast case */
    if (self->kind == KIND_REDUCE) return reduce_path(self, xs[0]);
    if (self->kind == KIND_SQUARE) {
        PyObject *pair[2] = {xs[0], xs[0]};
        return fast_path_binary(self, pair);
    }
    if (self->kind == KIND_POW && (PyLong_CheckExact(xs[1]) || PyFloat_CheckExact(xs[1]))) {
        double e = PyFloat_AsDouble(xs[1]);   /* (an int too large to convert: not 2) */
        if (e == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return NULL;
        }
        if (e != 2.0 || fast_operand(self, xs[0], 1) <= 0) return NULL;
        Node *x = (Node *)xs[0];
        PyObject *src = PyTuple_Pack(2, xs[0], xs[0]);
        if (src == NULL) return NULL;
        PyObject *out = new_node(self, mul_str, src, Py_None, x->shape, x->dtype);
        Py_DECREF(src);
        return out;
    }
    if (self->arity == 1) {
        int ok = fast_operand(self, xs[0], self->needs_float);
        if (ok <= 0) return NULL;
        Node *x = (Node *)xs[0];
        PyObject *src = PyTuple_Pack(1, xs[0]);
        if (src == NULL) return NULL;
        PyObject *out = new_node(self, self->name, src, Py_None, x->shape, x->dtype);
        Py_DECREF(src);
        return out;
    }
    return fast_path_binary(self, xs);
}

/* The dims of a shape (a tuple of ints) into d, padded with leading 1s to rank r; 0 where
 * the shape is not that (the general path then decides), -1 on error. */
#define MAX_RANK 32
static int padded_dims(PyObject *shape, Py_ssize_t r, long long *d) {
    Py_ssize_t n = PyTuple_GET_SIZE(shape), pad = r - n;
    for (Py_ssize_t j = 0; j < pad; j++) d[j] = 1;
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *item = PyTuple_GET_ITEM(shape, j);
        if (!PyLong_CheckExact(item)) return 0;
        int overflow;
        d[pad + j] = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (d[pad + j] == -1 && PyErr_Occurred()) return -1;
        if (overflow || d[pad + j] < 0) return 0;
    }
    return 1;
}

/* x (a fast operand of rank n, dims d padded to rank r) as lax.broadcast makes it of shape
 * out: a reshape to the padded rank where the ranks differ, then an expand. NULL without an
 * error where lax.broadcast would do otherwise (a reshape of an unrealized reshape collapses;
 * a reshape that already gives out makes an identity node inside f): the general path. */
static PyObject *broadcast_operand(ElementwiseOp *self, Node *x, Py_ssize_t r, const long long *d,
                                   PyObject *out, const long long *o) {
    Py_ssize_t n = PyTuple_GET_SIZE(x->shape);
    int same = 1;
    for (Py_ssize_t j = 0; j < r; j++) same &= d[j] == o[j];
    if (same && n == r) {
        Py_INCREF(x);
        return (PyObject *)x;
    }
    PyObject *cur = (PyObject *)x;
    Py_INCREF(cur);
    if (n < r) {
        if (same || (is_ascii(x->op, "reshape") && (x->buf == NULL || x->buf == Py_None))) {
            Py_DECREF(cur);
            return NULL;
        }
        PyObject *padded = PyTuple_New(r);
        if (padded == NULL) goto fail;
        for (Py_ssize_t j = 0; j < r; j++) {
            PyObject *dim = j < r - n ? PyLong_FromLong(1) : PyTuple_GET_ITEM(x->shape, j - (r - n));
            if (dim == NULL) {
                Py_DECREF(padded);
                goto fail;
            }
            if (j >= r - n) Py_INCREF(dim);
            PyTuple_SET_ITEM(padded, j, dim);
        }
        PyObject *src = PyTuple_Pack(1, cur);
        PyObject *node = src ? new_node(self, reshape_str, src, padded, padded, x->dtype) : NULL;
        Py_XDECREF(src);
        Py_DECREF(padded);
        Py_SETREF(cur, node);
        if (cur == NULL) return NULL;
    }
    PyObject *src = PyTuple_Pack(1, cur);
    PyObject *node = src ? new_node(self, expand_str, src, out, out, x->dtype) : NULL;
    Py_XDECREF(src);
    Py_DECREF(cur);
    return node;
fail:
    Py_DECREF(cur);
    return NULL;
}

/* Two float tensors of one dtype and different shapes: lax.apply's promote (broadcast_shapes,
 * then lax.broadcast of each operand that needs it) and the op's node over the results. NULL
 * without an error where that is not the plain case (shapes that do not broadcast: the
 * general path raises its message). */
static PyObject *broadcast_path(ElementwiseOp *self, Node *a, Node *b) {
    if (!PyTuple_CheckExact(a->shape) || !PyTuple_CheckExact(b->shape)) return NULL;
    Py_ssize_t na = PyTuple_GET_SIZE(a->shape), nb = PyTuple_GET_SIZE(b->shape);
    Py_ssize_t r = na > nb ? na : nb;
    if (r > MAX_RANK) return NULL;
    long long da[MAX_RANK], db[MAX_RANK], o[MAX_RANK];
    int ok = padded_dims(a->shape, r, da);
    if (ok > 0) ok = padded_dims(b->shape, r, db);
    if (ok <= 0) return NULL;
    for (Py_ssize_t j = 0; j < r; j++) {
        if (da[j] == db[j] || db[j] == 1) o[j] = da[j];
        else if (da[j] == 1) o[j] = db[j];
        else return NULL;
    }
    PyObject *out = PyTuple_New(r);
    if (out == NULL) return NULL;
    for (Py_ssize_t j = 0; j < r; j++) {
        PyObject *dim = PyLong_FromLongLong(o[j]);
        if (dim == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, j, dim);
    }
    PyObject *xa = broadcast_operand(self, a, r, da, out, o);
    PyObject *xb = xa ? broadcast_operand(self, b, r, db, out, o) : NULL;
    PyObject *result = NULL;
    if (xb != NULL) {
        PyObject *src = PyTuple_Pack(2, xa, xb);
        result = src ? new_node(self, self->name, src, Py_None, ((Node *)xa)->shape,
                                self->out_bool ? self->bool_ : a->dtype) : NULL;
        Py_XDECREF(src);
    }
    Py_XDECREF(xa);
    Py_XDECREF(xb);
    Py_DECREF(out);
    return result;
}

static PyObject *fast_path_binary(ElementwiseOp *self, PyObject *const *xs) {
    int ok = fast_operand(self, xs[0], 1);
    if (ok > 0) ok = fast_operand(self, xs[1], 1);
    if (ok <= 0) return NULL;
    Node *a = (Node *)xs[0], *b = (Node *)xs[1];
    ok = PyObject_RichCompareBool(a->dtype, b->dtype, Py_EQ);
    if (ok <= 0) return NULL;
    ok = PyObject_RichCompareBool(a->shape, b->shape, Py_EQ);
    if (ok < 0) return NULL;
    if (ok == 0) return broadcast_path(self, a, b);
    PyObject *src = PyTuple_Pack(2, xs[0], xs[1]);
    if (src == NULL) return NULL;
    PyObject *out = new_node(self, self->name, src, Py_None, a->shape,
                             self->out_bool ? self->bool_ : a->dtype);
    Py_DECREF(src);
    return out;
}

static PyObject *ElementwiseOp_vectorcall(ElementwiseOp *self, PyObject *const *args,
                                          size_t nargsf, PyObject *kwnames) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL || n != self->arity)
        return PyObject_Vectorcall(self->general, args, nargsf, kwnames);
    PyObject *xs[2] = {NULL, NULL};
    PyObject *out = NULL;
    for (Py_ssize_t j = 0; j < n; j++)
        if ((xs[j] = operand(self, args[j])) == NULL) goto done;
    out = fast_path(self, xs);
    if (out == NULL && !PyErr_Occurred())
        out = PyObject_Vectorcall(self->general, xs, n, NULL);
done:
    Py_XDECREF(xs[0]);
    Py_XDECREF(xs[1]);
    return out;
}

static PyObject *ElementwiseOp_get(PyObject *self, PyObject *obj, PyObject *type) {
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);   /* t.add(u) and t + u, as a function's method */
}

static PyObject *ElementwiseOp_repr(ElementwiseOp *self) {
    PyObject *name = PyObject_GetAttrString(self->general, "__name__");
    if (name == NULL) return NULL;
    PyObject *out = PyUnicode_FromFormat("<gpugrad op %S>", name);
    Py_DECREF(name);
    return out;
}

static int ElementwiseOp_traverse(ElementwiseOp *self, visitproc visit, void *arg) {
    Py_VISIT(self->name);
    Py_VISIT(self->general);
    Py_VISIT(self->tensor_cls);
    Py_VISIT(self->floats);
    Py_VISIT(self->bool_);
    Py_VISIT(self->dict);
    Py_VISIT(self->tables);
    return 0;
}

static int ElementwiseOp_clear(ElementwiseOp *self) {
    Py_CLEAR(self->name);
    Py_CLEAR(self->general);
    Py_CLEAR(self->tensor_cls);
    Py_CLEAR(self->floats);
    Py_CLEAR(self->bool_);
    Py_CLEAR(self->dict);
    Py_CLEAR(self->tables);
    return 0;
}

static void ElementwiseOp_dealloc(ElementwiseOp *self) {
    PyObject_GC_UnTrack(self);
    ElementwiseOp_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ElementwiseOpType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gpugrad.core._nodes.ElementwiseOp",
    .tp_doc = "An elementwise op's Python function with its common case in C.",
    .tp_basicsize = sizeof(ElementwiseOp),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(ElementwiseOp, vectorcall),
    .tp_descr_get = ElementwiseOp_get,
    .tp_repr = (reprfunc)ElementwiseOp_repr,
    .tp_dealloc = (destructor)ElementwiseOp_dealloc,
    .tp_traverse = (traverseproc)ElementwiseOp_traverse,
    .tp_clear = (inquiry)ElementwiseOp_clear,
    .tp_dictoffset = offsetof(ElementwiseOp, dict),
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_setattro = PyObject_GenericSetAttr,
};

/* elementwise_op(general, name, arity, out_bool, needs_float, tensor_cls, floats, bool_,
 *                kind=KIND_ELEMENTWISE, tables=None) */
static PyObject *elementwise_op(PyObject *module, PyObject *args) {
    PyObject *general, *name, *tensor_cls, *floats, *bool_, *tables = Py_None;
    int arity, out_bool, needs_float, kind = KIND_ELEMENTWISE;
    if (!PyArg_ParseTuple(args, "OUippO!O!U|iO", &general, &name, &arity, &out_bool, &needs_float,
                          &PyType_Type, &tensor_cls, &PyFrozenSet_Type, &floats, &bool_, &kind,
                          &tables))
        return NULL;
    if ((arity != 1 && arity != 2) || kind < KIND_ELEMENTWISE || kind > KIND_POW ||
            ((kind == KIND_SQUARE || kind == KIND_REDUCE) && arity != 1) ||
            (kind == KIND_POW && arity != 2)) {
        PyErr_SetString(PyExc_ValueError,
                        "elementwise_op: arity is 1 or 2; kind 0-3 (square, reduce unary; pow binary)");
        return NULL;
    }
    if (kind == KIND_REDUCE && !(PyTuple_Check(tables) && PyTuple_GET_SIZE(tables) == 2 &&
                                 PyTuple_Check(PyTuple_GET_ITEM(tables, 0)) &&
                                 PyTuple_Check(PyTuple_GET_ITEM(tables, 1)))) {
        PyErr_SetString(PyExc_TypeError, "elementwise_op: a reduction's tables are (axes, ones)");
        return NULL;
    }
    if (!PyType_IsSubtype((PyTypeObject *)tensor_cls, &NodeType)) {
        PyErr_SetString(PyExc_TypeError, "elementwise_op: tensor_cls must be a subclass of Node");
        return NULL;
    }
    ElementwiseOp *op = PyObject_GC_New(ElementwiseOp, &ElementwiseOpType);
    if (op == NULL) return NULL;
    Py_INCREF(name); op->name = name;
    Py_INCREF(general); op->general = general;
    Py_INCREF(tensor_cls); op->tensor_cls = tensor_cls;
    Py_INCREF(floats); op->floats = floats;
    Py_INCREF(bool_); op->bool_ = bool_;
    op->dict = NULL;
    Py_INCREF(tables); op->tables = tables;
    op->kind = kind;
    op->arity = arity;
    op->out_bool = out_bool;
    op->needs_float = needs_float;
    op->vectorcall = (vectorcallfunc)ElementwiseOp_vectorcall;
    PyObject_GC_Track(op);
    return (PyObject *)op;
}

/* --- a cached variable_grads call: gpugrad/api/autodiff.py's variable_grads fast path
 *
 * replay(f, var_list) does what that function's first branch does, in the same order:
 * pin each variable (distinct, live, trainable Variables only), run f with the pins set,
 * look the plan up by (y.key, the leaf id of each pin) when f made its whole graph and
 * assigned no variable, run it (engine.run_plan_weak) and wrap the results. It returns
 *   None                 f did not run: the caller takes the general path;
 *   a VariableGrads      the result;
 *   (y, start, pins)     f ran but its plan is not cached (or a leaf is gone): trace.pins
 *                        is still set, and the caller finishes on the cached path and
 *                        clears it.
 * Errors (f's own included) clear trace.pins and trace.depth and propagate. */

static PyObject *hot_plans, *run_plan_weak_fn, *ordered_fn, *result_new, *result_type,
                *tensor_type, *depth_str, *trainable_str, *value_node_str, *name_str, *one,
                *zero;
/* engine.run_plan_weak's common case (run_cached, below): the buffers lock (tensor.py's
 * ReadWriteLock), the backends module's globals (its current backend), and their names */
static PyObject *lock_obj, *readers_append, *readers_pop, *backends_globals;
static PyObject *current_str, *runner_key_str, *array_type_str, *runners_str, *copies_str,
                *writing_str, *waiting_str, *readers_str, *read_after_writer_str,
                *wake_writers_str;

/* configure_replay(hot_plans, run_plan_weak, ordered, new_result, VariableGrads, Tensor,
 *                  buffers_lock, backends module globals) */
static PyObject *configure_replay(PyObject *module, PyObject *args) {
    PyObject *hot, *run, *ordered, *new_result, *rtype, *ttype, *lock, *globals;
    if (!PyArg_ParseTuple(args, "O!OOOO!O!OO!", &PyDict_Type, &hot, &run, &ordered, &new_result,
                          &PyType_Type, &rtype, &PyType_Type, &ttype, &lock,
                          &PyDict_Type, &globals))
        return NULL;
    PyObject *readers = PyObject_GetAttr(lock, readers_str);
    if (readers == NULL) return NULL;
    PyObject *append = PyObject_GetAttrString(readers, "append");
    PyObject *pop = append ? PyObject_GetAttrString(readers, "pop") : NULL;
    Py_DECREF(readers);
    if (pop == NULL) {
        Py_XDECREF(append);
        return NULL;
    }
    Py_XSETREF(readers_append, append);
    Py_XSETREF(readers_pop, pop);
    Py_INCREF(lock); Py_XSETREF(lock_obj, lock);
    Py_INCREF(globals); Py_XSETREF(backends_globals, globals);
    Py_INCREF(hot); Py_XSETREF(hot_plans, hot);
    Py_INCREF(run); Py_XSETREF(run_plan_weak_fn, run);
    Py_INCREF(ordered); Py_XSETREF(ordered_fn, ordered);
    Py_INCREF(new_result); Py_XSETREF(result_new, new_result);
    Py_INCREF(rtype); Py_XSETREF(result_type, rtype);
    Py_INCREF(ttype); Py_XSETREF(tensor_type, ttype);
    Py_RETURN_NONE;
}

/* ReadWriteLock.acquire_read and release_read, as tensor.py writes them: a reader counts
 * itself in the deque (atomic under the GIL) and then looks for a writer; the rare cases
 * call the lock's own methods. */
static int call_lock_method(PyObject *name) {
    PyObject *r = PyObject_CallMethodNoArgs(lock_obj, name);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

static int truth_attr(PyObject *o, PyObject *name);

static int acquire_read(void) {
    PyObject *r = PyObject_CallOneArg(readers_append, Py_None);
    if (r == NULL) return -1;
    Py_DECREF(r);
    int writer = truth_attr(lock_obj, writing_str);
    if (writer == 0) writer = truth_attr(lock_obj, waiting_str);
    if (writer == 0) return 0;
    /* (an error there leaves the count as that method leaves it, as in Python) */
    if (writer > 0) return call_lock_method(read_after_writer_str);
    /* a flag could not be read: not counted */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    r = PyObject_CallNoArgs(readers_pop);
    Py_XDECREF(r);
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
    return -1;
}

/* keeps an error already set */
static int release_read(void) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    int err = 0;
    PyObject *r = PyObject_CallNoArgs(readers_pop);
    if (r == NULL) err = -1;
    Py_XDECREF(r);
    if (err == 0) {
        int waiting = truth_attr(lock_obj, waiting_str);
        if (waiting < 0 || (waiting > 0 && call_lock_method(wake_writers_str) < 0)) err = -1;
    }
    if (type != NULL) {
        PyErr_Clear();   /* the first error is the one that propagates */
        PyErr_Restore(type, value, tb);
        return -1;
    }
    return err;
}

/* engine.run_plan_weak(plan, refs) (a new reference: the outputs, or None where a leaf is
 * gone). Its common case here: the current backend has made the plan's runner
 * (plan.runners[backend.runner_key]), every input is of exactly backend.array_type and the
 * plan copies no output; the runner then does all that backend.run would. Any other case
 * calls run_plan_weak itself. */
static PyObject *run_cached(PyObject *plan, PyObject *refs) {
    PyObject *backend = PyDict_GetItemWithError(backends_globals, current_str);   /* borrowed */
    PyObject *key = NULL, *runners = NULL, *runner = NULL, *array_type = NULL, *bufs = NULL;
    if (backend == NULL || backend == Py_None) {
        if (PyErr_Occurred()) return NULL;
        goto general;
    }
    Py_INCREF(backend);
    key = PyObject_GetAttr(backend, runner_key_str);
    array_type = key ? PyObject_GetAttr(backend, array_type_str) : NULL;
    runners = array_type ? PyObject_GetAttr(plan, runners_str) : NULL;
    if (runners == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) goto error;
        PyErr_Clear();   /* a backend that does not say: the general way */
        goto general;
    }
    if (!PyDict_Check(runners) || !PyType_Check(array_type)) goto general;
    runner = PyDict_GetItemWithError(runners, key);   /* borrowed */
    if (runner == NULL || runner == Py_None) {
        if (PyErr_Occurred()) goto error;
        runner = NULL;
        goto general;
    }
    Py_INCREF(runner);
    int copies = truth_attr(plan, copies_str);
    if (copies < 0) goto error;
    if (copies) goto general;
    if (acquire_read() < 0) goto error;
    bufs = buffers_of(NULL, refs);
    if (bufs == NULL || bufs == Py_None) {
        if (release_read() < 0 || bufs == NULL) goto error;
        goto done;   /* (None) */
    }
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(bufs); j++) {
        if ((PyObject *)Py_TYPE(PyList_GET_ITEM(bufs, j)) != array_type) {
            Py_CLEAR(bufs);
            if (release_read() < 0) goto error;
            goto general;
        }
    }
    PyObject *outs = PyObject_CallOneArg(runner, bufs);
    Py_SETREF(bufs, outs);
    if (release_read() < 0 || bufs == NULL) goto error;
    goto done;
general:
    Py_XDECREF(bufs);
    {
        PyObject *run_args[2] = {plan, refs};
        bufs = PyObject_Vectorcall(run_plan_weak_fn, run_args, 2, NULL);
    }
    goto done;
error:
    Py_CLEAR(bufs);
done:
    Py_XDECREF(backend);
    Py_XDECREF(key);
    Py_XDECREF(array_type);
    Py_XDECREF(runners);
    Py_XDECREF(runner);
    return bufs;
}

static int truth_attr(PyObject *o, PyObject *name) {
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL) return -1;
    int t = PyObject_IsTrue(v);
    Py_DECREF(v);
    return t;
}

/* The pins of var_list and the plan key with its slot 0 left for y's key; 0 with *pins NULL
 * where the list is not the common case; -1 on error. */
static int pin_all(PyObject *var_list, PyObject **pins_out, PyObject **key_out) {
    *pins_out = *key_out = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(var_list);
    PyObject **items = PySequence_Fast_ITEMS(var_list);
    PyObject *pins = PyDict_New();
    PyObject *key = pins ? PyTuple_New(n + 1) : NULL;
    if (key == NULL) goto fail;
    Py_INCREF(Py_None);
    PyTuple_SET_ITEM(key, 0, Py_None);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *v = items[j];
        if ((PyObject *)Py_TYPE(v) != variable_cls) goto not_common;
        int t = truth_attr(v, trainable_str);
        if (t < 0) goto fail;
        if (!t) goto not_common;
        t = truth_attr(v, disposed_str);
        if (t < 0) goto fail;
        if (t) goto not_common;
        PyObject *id = PyLong_FromVoidPtr(v);
        if (id == NULL) goto fail;
        t = PyDict_Contains(pins, id);
        PyObject *node = t == 0 ? PyObject_GetAttr(v, value_node_str) : NULL;
        if (node == NULL || !PyObject_TypeCheck(node, &NodeType)) {
            Py_DECREF(id);
            Py_XDECREF(node);
            if (PyErr_Occurred()) goto fail;
            goto not_common;   /* listed twice (or a value that is no node) */
        }
        PyObject *node_id = PyLong_FromLongLong(((Node *)node)->id);
        PyObject *leaves = node_id ? PyList_New(1) : NULL;
        PyObject *entry = NULL;
        if (leaves != NULL) {
            Py_INCREF(node);
            PyList_SET_ITEM(leaves, 0, node);
            entry = PyTuple_Pack(2, v, leaves);
        }
        int err = entry ? PyDict_SetItem(pins, id, entry) : -1;
        Py_DECREF(id);
        Py_DECREF(node);
        Py_XDECREF(leaves);
        Py_XDECREF(entry);
        if (err < 0) {
            Py_XDECREF(node_id);
            goto fail;
        }
        PyTuple_SET_ITEM(key, j + 1, node_id);
    }
    *pins_out = pins;
    *key_out = key;
    return 0;
not_common:
    Py_XDECREF(pins);
    Py_XDECREF(key);
    return 0;
fail:
    Py_XDECREF(pins);
    Py_XDECREF(key);
    return -1;
}

/* trace.pins = None and trace.depth = 0, keeping an error already set */
static void unpin(void) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (PyObject_SetAttr(trace_obj, depth_str, zero) < 0 ||
            PyObject_SetAttr(trace_obj, pins_str, Py_None) < 0)
        PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

/* The result of a replayed plan: its outputs wrapped as tracked leaves, by variable name in
 * TF.js's key order (autodiff._replayed). */
static PyObject *wrap(PyObject *outs, PyObject *y, PyObject *specs, PyObject *var_list) {
    Node *yn = (Node *)y;
    if (!PyList_Check(outs) || PyList_GET_SIZE(outs) < 1 || !PyTuple_Check(specs)) {
        PyErr_SetString(PyExc_TypeError, "replay: a plan's outputs are a list, its specs a tuple");
        return NULL;
    }
    PyObject *args[4] = {tensor_type, PyList_GET_ITEM(outs, 0), yn->shape, yn->dtype};
    if ((yn->buf == NULL || yn->buf == Py_None) && Py_REFCNT(y) > 1) {
        /* something besides this call holds y (f kept it, or a node built on it): realize
         * it too, so a later read costs nothing */
        Py_INCREF(args[1]);
        Py_XSETREF(yn->buf, args[1]);
        PyObject *r = PyObject_CallOneArg(track_fn, y);
        if (r == NULL) return NULL;
        Py_DECREF(r);
    }
    PyObject *value = tracked_leaf(NULL, args, 4);
    PyObject *grads = value ? PyDict_New() : NULL;
    PyObject *names = grads ? PyTuple_New(PyTuple_GET_SIZE(specs)) : NULL;   /* for ordered */
    if (names == NULL) goto fail;
    Py_ssize_t n_vars = PySequence_Fast_GET_SIZE(var_list);
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(specs); j++) {
        PyObject *spec = PyTuple_GET_ITEM(specs, j);   /* (i, k, shape, dtype) */
        if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 4) {
            PyErr_SetString(PyExc_TypeError, "replay: a result spec is (i, k, shape, dtype)");
            goto fail;
        }
        Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 0));
        Py_ssize_t k = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 1));
        if ((i == -1 || k == -1) && PyErr_Occurred()) goto fail;
        if (i < 0 || i >= n_vars || k < 0 || k >= PyList_GET_SIZE(outs)) {
            PyErr_SetString(PyExc_IndexError, "replay: a result spec is out of range");
            goto fail;
        }
        PyObject *name = PyObject_GetAttr(PySequence_Fast_GET_ITEM(var_list, i), name_str);
        if (name == NULL) goto fail;
        PyObject *leaf_args[4] = {tensor_type, PyList_GET_ITEM(outs, k),
                                  PyTuple_GET_ITEM(spec, 2), PyTuple_GET_ITEM(spec, 3)};
        PyObject *g = tracked_leaf(NULL, leaf_args, 4);
        int err = g ? PyDict_SetItem(grads, name, g) : -1;
        PyTuple_SET_ITEM(names, j, name);   /* (the tuple takes the reference) */
        Py_XDECREF(g);
        if (err < 0) goto fail;
    }
    if (PyDict_GET_SIZE(grads) != PyTuple_GET_SIZE(names)) {   /* two variables of one name */
        PyObject *keys = PyDict_Keys(grads);
        Py_XSETREF(names, keys ? PyList_AsTuple(keys) : NULL);
        Py_XDECREF(keys);
        if (names == NULL) goto fail;
    }
    PyObject *order = PyObject_CallOneArg(ordered_fn, names);
    Py_CLEAR(names);
    if (order == NULL) goto fail;
    if (order != Py_None) {   /* the names in JS object key order */
        PyObject *sorted = PyDict_New();
        PyObject *seq = sorted ? PySequence_Fast(order, "ordered names") : NULL;
        for (Py_ssize_t j = 0; seq != NULL && j < PySequence_Fast_GET_SIZE(seq); j++) {
            PyObject *nm = PySequence_Fast_GET_ITEM(seq, j);
            PyObject *g = PyDict_GetItemWithError(grads, nm);
            if (g == NULL || PyDict_SetItem(sorted, nm, g) < 0) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "replay: ordered name");
                Py_CLEAR(seq);
            }
        }
        Py_DECREF(order);
        if (seq == NULL) {
            Py_XDECREF(sorted);
            goto fail;
        }
        Py_DECREF(seq);
        Py_SETREF(grads, sorted);
    } else {
        Py_DECREF(order);
    }
    PyObject *pair = PyTuple_Pack(2, value, grads);
    Py_DECREF(value);
    Py_DECREF(grads);
    if (pair == NULL) return NULL;
    PyObject *new_args[2] = {result_type, pair};
    PyObject *out = PyObject_Vectorcall(result_new, new_args, 2, NULL);
    Py_DECREF(pair);
    return out;
fail:
    Py_XDECREF(value);
    Py_XDECREF(grads);
    Py_XDECREF(names);
    return NULL;
}

static PyObject *replay(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "replay(f, var_list) takes 2 arguments");
        return NULL;
    }
    PyObject *f = args[0], *var_list = args[1];
    if (hot_plans == NULL || trace_obj == NULL || track_fn == NULL) Py_RETURN_NONE;
    if (!(PyList_CheckExact(var_list) || PyTuple_CheckExact(var_list)) ||
            PySequence_Fast_GET_SIZE(var_list) == 0 || !PyCallable_Check(f))
        Py_RETURN_NONE;
    PyObject *cur = PyObject_GetAttr(trace_obj, pins_str);
    if (cur == NULL) return NULL;
    Py_DECREF(cur);
    if (cur != Py_None) Py_RETURN_NONE;
    int nested = truth_attr(trace_obj, depth_str);
    if (nested < 0) return NULL;
    if (nested) Py_RETURN_NONE;

    PyObject *pins, *key;
    if (pin_all(var_list, &pins, &key) < 0) return NULL;
    if (pins == NULL) Py_RETURN_NONE;
    long long start;
    PyObject *y = NULL, *out = NULL;
    if (PyObject_SetAttr(trace_obj, pins_str, pins) < 0 || next_id(&start) < 0 ||
            PyObject_SetAttr(trace_obj, depth_str, one) < 0)
        goto error;
    PyThreadState *me = PyThreadState_Get();
    replay_thread = me;
    replay_pins = pins;
    {
        Py_ssize_t pos = 0, m = 0;
        PyObject *k, *entry;
        while (PyDict_Next(pins, &pos, &k, &entry) && m < REPLAY_VARS) {
            replay_vars[m] = PyTuple_GET_ITEM(entry, 0);
            replay_leaves[m++] = PyTuple_GET_ITEM(entry, 1);
        }
        n_replay_vars = m;
    }
    y = PyObject_CallNoArgs(f);
    if (replay_thread == me) {   /* (another thread's replay may have taken them since) */
        replay_thread = NULL;
        replay_pins = NULL;
        n_replay_vars = 0;
    }
    {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        int err = PyObject_SetAttr(trace_obj, depth_str, zero);
        PyErr_Restore(type, value, tb);
        if (y == NULL || err < 0) goto error;
    }
    if ((PyObject *)Py_TYPE(y) != tensor_type || !initialized(y) || ((Node *)y)->lo < start)
        goto miss;
    {
        Py_ssize_t pos = 0;
        PyObject *k, *entry;
        while (PyDict_Next(pins, &pos, &k, &entry)) {
            /* f assigned a variable: the general path */
            if (PyList_GET_SIZE(PyTuple_GET_ITEM(entry, 1)) != 1) goto miss;
        }
    }
    {
        PyObject *ykey = PyLong_FromLongLong(((Node *)y)->key);
        if (ykey == NULL) goto error;
        Py_SETREF(((PyTupleObject *)key)->ob_item[0], ykey);
    }
    PyObject *entry = PyDict_GetItemWithError(hot_plans, key);   /* borrowed */
    if (entry == NULL) {
        if (PyErr_Occurred()) goto error;
        goto miss;
    }
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 4) {
        PyErr_SetString(PyExc_TypeError, "replay: a hot plan entry is (plan, refs, _, specs)");
        goto error;
    }
    Py_INCREF(entry);
    PyObject *outs = run_cached(PyTuple_GET_ITEM(entry, 0), PyTuple_GET_ITEM(entry, 1));
    if (outs == NULL) {
        Py_DECREF(entry);
        goto error;
    }
    if (outs == Py_None) {   /* a leaf of the plan is gone */
        Py_DECREF(outs);
        Py_DECREF(entry);
        goto miss;
    }
    out = wrap(outs, y, PyTuple_GET_ITEM(entry, 3), var_list);
    Py_DECREF(outs);
    Py_DECREF(entry);
    if (out == NULL || PyObject_SetAttr(trace_obj, pins_str, Py_None) < 0) {   /* (depth is 0) */
        Py_CLEAR(out);
        goto error;
    }
    Py_DECREF(y);
    Py_DECREF(pins);
    Py_DECREF(key);
    return out;
miss:
    {
        PyObject *s = PyLong_FromLongLong(start);
        out = s ? PyTuple_Pack(3, y, s, pins) : NULL;
        Py_XDECREF(s);
        if (out == NULL) goto error;
        Py_DECREF(y);
        Py_DECREF(pins);
        Py_DECREF(key);
        return out;   /* trace.pins stays set: the caller clears it */
    }
error:
    unpin();
    Py_XDECREF(y);
    Py_DECREF(pins);
    Py_DECREF(key);
    return NULL;
}

/* configure(ids, keys, intern, NO_OP) */
static PyObject *configure(PyObject *module, PyObject *args) {
    PyObject *ids, *keys, *intern;
    long long no_op;
    if (!PyArg_ParseTuple(args, "OO!OL", &ids, &PyDict_Type, &keys, &intern, &no_op))
        return NULL;
    Py_INCREF(ids); Py_XSETREF(ids_iter, ids);
    Py_INCREF(keys); Py_XSETREF(keys_table, keys);
    Py_INCREF(intern); Py_XSETREF(intern_fn, intern);
    NO_OP = no_op;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"make_leaf", (PyCFunction)(void (*)(void))make_leaf, METH_FASTCALL,
     "make_leaf(cls, buf, shape, dtype): a realized leaf (nodes.py's py_make_leaf)."},
    {"tracked_leaf", (PyCFunction)(void (*)(void))tracked_leaf, METH_FASTCALL,
     "tracked_leaf(cls, buf, shape, dtype): make_leaf, registered as tensor.py's track does."},
    {"configure_tracking", configure_tracking, METH_VARARGS,
     "configure_tracking(live, sweep_at, open_scopes, track): tensor.py's registry."},
    {"buffers_of", buffers_of, METH_O,
     "buffers_of(refs): the buffer of the leaf each weak reference names; None where one is "
     "collected or disposed."},
    {"replay", (PyCFunction)(void (*)(void))replay, METH_FASTCALL,
     "replay(f, var_list): autodiff.variable_grads's cached path (see above)."},
    {"configure_replay", configure_replay, METH_VARARGS,
     "configure_replay(hot_plans, run_plan_weak, ordered, new_result, VariableGrads, Tensor, "
     "buffers_lock, backends module globals)."},
    {"configure_variables", configure_variables, METH_VARARGS,
     "configure_variables(Variable, trace): how an elementwise op reads a pinned variable."},
    {"elementwise_op", elementwise_op, METH_VARARGS,
     "elementwise_op(general, name, arity, out_bool, needs_float, tensor_cls, floats, bool_): "
     "general with its common case in C (see above)."},
    {"forget_keys", forget_keys, METH_NOARGS,
     "forget_keys(): empties the cache of op keys (nodes.py calls it when the key table is "
     "cleared)."},
    {"configure", configure, METH_VARARGS,
     "configure(ids, keys, intern, NO_OP): nodes.py's counter, key table and interning."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_nodes", "gpugrad's graph node in C (see nodes.py).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__nodes(void) {
    if (PyType_Ready(&NodeType) < 0 || PyType_Ready(&ElementwiseOpType) < 0) return NULL;
    node_str = PyUnicode_InternFromString("_node");
    disposed_str = PyUnicode_InternFromString("disposed");
    pins_str = PyUnicode_InternFromString("pins");
    reshape_str = PyUnicode_InternFromString("reshape");
    mul_str = PyUnicode_InternFromString("mul");
    expand_str = PyUnicode_InternFromString("expand");
    if (reshape_str == NULL || mul_str == NULL || expand_str == NULL) return NULL;
    depth_str = PyUnicode_InternFromString("depth");
    trainable_str = PyUnicode_InternFromString("_trainable");
    value_node_str = PyUnicode_InternFromString("value_node");
    name_str = PyUnicode_InternFromString("name");
    one = PyLong_FromLong(1);
    zero = PyLong_FromLong(0);
    if (node_str == NULL || disposed_str == NULL || pins_str == NULL || depth_str == NULL ||
            trainable_str == NULL || value_node_str == NULL || name_str == NULL || one == NULL ||
            zero == NULL)
        return NULL;
    buffer_str = PyUnicode_InternFromString("buffer");
    c_str = PyUnicode_InternFromString("C");
    if (c_str == NULL) return NULL;
    current_str = PyUnicode_InternFromString("_current");
    runner_key_str = PyUnicode_InternFromString("runner_key");
    array_type_str = PyUnicode_InternFromString("array_type");
    runners_str = PyUnicode_InternFromString("runners");
    copies_str = PyUnicode_InternFromString("copies");
    writing_str = PyUnicode_InternFromString("_writing");
    waiting_str = PyUnicode_InternFromString("_waiting");
    readers_str = PyUnicode_InternFromString("_readers");
    read_after_writer_str = PyUnicode_InternFromString("_read_after_writer");
    wake_writers_str = PyUnicode_InternFromString("_wake_writers");
    if (current_str == NULL || runner_key_str == NULL || array_type_str == NULL ||
            runners_str == NULL || copies_str == NULL || writing_str == NULL ||
            waiting_str == NULL || readers_str == NULL || read_after_writer_str == NULL ||
            wake_writers_str == NULL)
        return NULL;
    empty_tuple = PyTuple_New(0);
    if (buffer_str == NULL || empty_tuple == NULL) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) return NULL;
    Py_INCREF(&NodeType);
    if (PyModule_AddObject(m, "Node", (PyObject *)&NodeType) < 0) {
        Py_DECREF(&NodeType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
