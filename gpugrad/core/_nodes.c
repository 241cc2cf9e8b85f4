/* The graph node as a C type: gpugrad/core/nodes.py's PyNode, field for field.
 *
 * Why C: tracing f makes one node per op, and a node's Python __init__ (nine slot stores, the
 * key tuple, a dict lookup) was most of what an op cost in a cached gradient call. This file
 * holds no rule of its own: the key table, the id counter, interning and constants' keys are
 * nodes.py's, handed over by configure(); tests/test_nodes.py checks that both types give the
 * same fields for the same structures.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>

typedef struct {
    PyObject_HEAD
    PyObject *op, *src, *arg, *shape, *dtype, *buf;
    long long id, key, lo;
    PyObject *weakreflist;
} Node;

/* nodes.py's objects, set by configure() before any node is made */
static PyObject *ids_iter, *keys_table, *intern_fn, *const_key_fn;
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
    return PyUnicode_Check(s) && PyUnicode_CompareWithASCIIString(s, text) == 0;
}

/* The key of an op node: its interned structure, or its own id where the structure must
 * never match another (a custom gradient; an arg that cannot be hashed). -1 with an error set
 * on failure. */
static long long op_key(PyObject *op, PyObject *src, PyObject *arg, PyObject *shape,
                        PyObject *dtype, long long i, long long *lo_out) {
    Py_ssize_t n = PyTuple_GET_SIZE(src);
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
    } else if (is_ascii(op, "custom_grad")) {
        key = i;         /* never shared, nor held by the table */
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
    return key;
}

static int Node_init(Node *self, PyObject *args, PyObject *kwds) {
    if ((kwds != NULL && PyDict_GET_SIZE(kwds)) || PyTuple_GET_SIZE(args) != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "Node(op, src, arg, shape, dtype) takes 5 positional arguments");
        return -1;
    }
    PyObject *op = PyTuple_GET_ITEM(args, 0), *src = PyTuple_GET_ITEM(args, 1),
             *arg = PyTuple_GET_ITEM(args, 2), *shape = PyTuple_GET_ITEM(args, 3),
             *dtype = PyTuple_GET_ITEM(args, 4);
    if (!PyTuple_Check(src)) {
        PyErr_Format(PyExc_TypeError, "a node's sources are a tuple, got %.200s",
                     Py_TYPE(src)->tp_name);
        return -1;
    }
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
        long long lo;
        long long key = op_key(op, src, arg, shape, dtype, i, &lo);
        if (key == -1 && PyErr_Occurred()) return -1;
        self->key = key;
        self->lo = lo;
    } else if (is_ascii(op, "const")) {
        self->lo = NO_OP;
        PyObject *r = PyObject_CallFunctionObjArgs(const_key_fn, arg, shape, dtype, NULL);
        if (r == NULL) return -1;
        self->key = PyLong_AsLongLong(r);
        Py_DECREF(r);
        if (self->key == -1 && PyErr_Occurred()) return -1;
    } else {
        self->lo = NO_OP;
        self->key = i;
    }
    return 0;
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
    {"op", T_OBJECT_EX, offsetof(Node, op), 0, NULL},
    {"src", T_OBJECT_EX, offsetof(Node, src), 0, NULL},
    {"arg", T_OBJECT_EX, offsetof(Node, arg), 0, NULL},
    {"shape", T_OBJECT_EX, offsetof(Node, shape), 0, NULL},
    {"dtype", T_OBJECT_EX, offsetof(Node, dtype), 0, NULL},
    {"buf", T_OBJECT_EX, offsetof(Node, buf), 0, NULL},
    {"id", T_LONGLONG, offsetof(Node, id), 0, NULL},
    {"key", T_LONGLONG, offsetof(Node, key), 0, NULL},
    {"lo", T_LONGLONG, offsetof(Node, lo), 0, NULL},
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

/* configure(ids, keys, intern, const_key, NO_OP) */
static PyObject *configure(PyObject *module, PyObject *args) {
    PyObject *ids, *keys, *intern, *ckey;
    long long no_op;
    if (!PyArg_ParseTuple(args, "OO!OOL", &ids, &PyDict_Type, &keys, &intern, &ckey, &no_op))
        return NULL;
    Py_INCREF(ids); Py_XSETREF(ids_iter, ids);
    Py_INCREF(keys); Py_XSETREF(keys_table, keys);
    Py_INCREF(intern); Py_XSETREF(intern_fn, intern);
    Py_INCREF(ckey); Py_XSETREF(const_key_fn, ckey);
    NO_OP = no_op;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"make_leaf", (PyCFunction)(void (*)(void))make_leaf, METH_FASTCALL,
     "make_leaf(cls, buf, shape, dtype): a realized leaf (nodes.py's py_make_leaf)."},
    {"configure", configure, METH_VARARGS,
     "configure(ids, keys, intern, const_key, NO_OP): nodes.py's counter, table and rules."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_nodes", "gpugrad's graph node in C (see nodes.py).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__nodes(void) {
    if (PyType_Ready(&NodeType) < 0) return NULL;
    buffer_str = PyUnicode_InternFromString("buffer");
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
