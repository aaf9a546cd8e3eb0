/* The visited set of the explicit search, outside the interpreter's heap.
 *
 * A state is a non-negative Python int of at most `words` 64-bit words.  The
 * table keeps, in the order states were entered, each state as `words`
 * machine words and the global id of its parent (an int64: -1 for the root),
 * and an open-addressing index of uint32 slots (entry index + 1, 0 empty)
 * over them.  Breadth-first, a level is a contiguous range of entries, so the
 * search needs no frontier of its own: it walks ranges of indices.
 *
 * Partitioned (workers > 1): a state belongs to the worker `owner(state)`
 * picks from its hash; `add` enters the states of this table's worker and
 * appends the others, with their parent ids, to a per-worker outbox that
 * `take` hands over as bytes and `add_batch` enters on the other side.
 * A parent is given as an index of this table and kept as a global id,
 * local index * workers + worker, so parents can be followed across tables
 * (records carry global ids).
 *
 * Memory per state: 8 * words + 8 (parent) + 4 / load (index, load between
 * 0.35 and 0.7), e.g. 3 words: 38 to 43 bytes.  The store grows by doubling
 * with realloc; pages not yet written cost no resident memory. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define MAXW 32 /* words: states of up to 2048 bits */

typedef struct {
    PyObject_HEAD
    Py_ssize_t words;   /* 64-bit words per state */
    Py_ssize_t nbytes;  /* bytes per state as converted */
    Py_ssize_t n;       /* entries */
    Py_ssize_t cap;     /* entries the store has room for */
    uint64_t *keys;     /* n * words */
    int64_t *parents;   /* n */
    uint32_t *slots;    /* index: entry + 1, 0 empty */
    uint64_t mask;      /* slots - 1 */
    Py_ssize_t workers, me;
    PyObject **outbox;  /* per worker: bytearray of (words + 1) * 8-byte records */
} Table;

static inline uint64_t mix(uint64_t h)
{
    /* splitmix64's finaliser */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static inline uint64_t hash_words(const uint64_t *w, Py_ssize_t nw)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (Py_ssize_t i = 0; i < nw; i++)
        h = mix(h ^ w[i]);
    return h;
}

/* The state as words; -1 with an exception if it is negative or too wide. */
static int to_words(Table *t, PyObject *o, uint64_t *w)
{
    if (!PyLong_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "a state is an int");
        return -1;
    }
    if (t->words == 1) {
        unsigned long long v = PyLong_AsUnsignedLongLong(o);
        if (v == (unsigned long long)-1 && PyErr_Occurred())
            return -1;
        w[0] = v;
        return 0;
    }
    memset(w, 0, (size_t)t->words * 8);
#if PY_VERSION_HEX < 0x030C0000
    /* CPython 3.11's int: |ob_size| digits of PyLong_SHIFT bits, sign in
     * ob_size; read them directly, it is the search's innermost step */
    Py_ssize_t size = Py_SIZE(o);
    if (size < 0) {
        PyErr_SetString(PyExc_OverflowError, "can't convert negative int to unsigned");
        return -1;
    }
    const digit *d = ((PyLongObject *)o)->ob_digit;
    Py_ssize_t bit = 0, nw = t->words;
    for (Py_ssize_t i = 0; i < size; i++, bit += PyLong_SHIFT) {
        uint64_t v = d[i];
        Py_ssize_t k = bit >> 6;
        int off = (int)(bit & 63);
        if (k >= nw) {
            if (v)
                goto wide;
            continue;
        }
        w[k] |= v << off;
        if (off + PyLong_SHIFT > 64) {
            uint64_t hi = v >> (64 - off);
            if (k + 1 < nw)
                w[k + 1] |= hi;
            else if (hi)
                goto wide;
        }
    }
    return 0;
wide:
    PyErr_SetString(PyExc_OverflowError, "int too big to convert");
    return -1;
#elif PY_VERSION_HEX >= 0x030D0000
    Py_ssize_t r = PyLong_AsNativeBytes(o, w, t->nbytes,
                                        Py_ASNATIVEBYTES_LITTLE_ENDIAN | Py_ASNATIVEBYTES_UNSIGNED_BUFFER |
                                            Py_ASNATIVEBYTES_REJECT_NEGATIVE);
    if (r < 0)
        return -1;
    if (r > t->nbytes) {
        PyErr_SetString(PyExc_OverflowError, "state wider than the table");
        return -1;
    }
    return 0;
#else
    return _PyLong_AsByteArray((PyLongObject *)o, (unsigned char *)w, (size_t)t->nbytes, 1, 0);
#endif
}

static PyObject *from_words(Table *t, const uint64_t *w)
{
    if (t->words == 1)
        return PyLong_FromUnsignedLongLong(w[0]);
#if PY_VERSION_HEX >= 0x030D0000
    return PyLong_FromUnsignedNativeBytes(w, t->nbytes, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
    return _PyLong_FromByteArray((const unsigned char *)w, (size_t)t->nbytes, 1, 0);
#endif
}

static int grow_index(Table *t)
{
    uint64_t ncap = t->slots ? (t->mask + 1) * 2 : 1024;
    uint32_t *ns = PyMem_RawCalloc(ncap, sizeof(uint32_t));
    if (!ns) {
        PyErr_NoMemory();
        return -1;
    }
    uint64_t m = ncap - 1;
    for (Py_ssize_t i = 0; i < t->n; i++) {
        uint64_t j = hash_words(t->keys + i * t->words, t->words) & m;
        while (ns[j])
            j = (j + 1) & m;
        ns[j] = (uint32_t)(i + 1);
    }
    PyMem_RawFree(t->slots);
    t->slots = ns;
    t->mask = m;
    return 0;
}

static int grow_store(Table *t)
{
    Py_ssize_t ncap = t->cap ? t->cap * 2 : 1024;
    uint64_t *k = PyMem_RawRealloc(t->keys, (size_t)ncap * t->words * 8);
    if (!k) {
        PyErr_NoMemory();
        return -1;
    }
    t->keys = k;
    int64_t *p = PyMem_RawRealloc(t->parents, (size_t)ncap * 8);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    t->parents = p;
    t->cap = ncap;
    return 0;
}

/* The entry of w, or -1; *slot is where it would go. */
static inline Py_ssize_t find(Table *t, const uint64_t *w, uint64_t h, uint64_t *slot)
{
    uint64_t j = h & t->mask;
    size_t sz = (size_t)t->words * 8;
    for (;;) {
        uint32_t e = t->slots[j];
        if (!e) {
            *slot = j;
            return -1;
        }
        if (memcmp(t->keys + (Py_ssize_t)(e - 1) * t->words, w, sz) == 0)
            return e - 1;
        j = (j + 1) & t->mask;
    }
}

/* Enter w with parent p if new: its index, -1 if known, -2 on error. */
static Py_ssize_t insert(Table *t, const uint64_t *w, uint64_t h, int64_t p)
{
    uint64_t slot;
    if (find(t, w, h, &slot) >= 0)
        return -1;
    if (t->n >= (Py_ssize_t)UINT32_MAX - 1) {
        PyErr_SetString(PyExc_MemoryError, "more than 4,294,967,294 states in one table");
        return -2;
    }
    if ((uint64_t)(t->n + 1) * 10 > (t->mask + 1) * 7) {
        if (grow_index(t) < 0)
            return -2;
        find(t, w, h, &slot);
    }
    if (t->n == t->cap && grow_store(t) < 0)
        return -2;
    memcpy(t->keys + t->n * t->words, w, (size_t)t->words * 8);
    t->parents[t->n] = p;
    t->slots[slot] = (uint32_t)(t->n + 1);
    return t->n++;
}

static inline Py_ssize_t owner_of(Table *t, uint64_t h)
{
    return (Py_ssize_t)((h >> 40) % (uint64_t)t->workers);
}

/* The global id of this table's entry p (-1: none) */
static inline long long global_id(Table *t, long long p)
{
    return p < 0 ? -1 : p * t->workers + t->me;
}

static int Table_init(Table *t, PyObject *args, PyObject *kw)
{
    static char *names[] = {"bits", "workers", "me", NULL};
    Py_ssize_t bits, workers = 1, me = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|nn", names, &bits, &workers, &me))
        return -1;
    if (bits < 1)
        bits = 1;
    if (workers < 1 || me < 0 || me >= workers) {
        PyErr_SetString(PyExc_ValueError, "need 0 <= me < workers");
        return -1;
    }
    t->words = (bits + 63) / 64;
    if (t->words > MAXW) {
        PyErr_SetString(PyExc_ValueError, "states wider than 2048 bits");
        return -1;
    }
    t->nbytes = t->words * 8;
    t->workers = workers;
    t->me = me;
    if (workers > 1) {
        t->outbox = PyMem_Calloc((size_t)workers, sizeof(PyObject *));
        if (!t->outbox)
            return -1;
        for (Py_ssize_t i = 0; i < workers; i++)
            if (!(t->outbox[i] = PyByteArray_FromStringAndSize(NULL, 0)))
                return -1;
    }
    return grow_index(t) < 0 || grow_store(t) < 0 ? -1 : 0;
}

static void Table_dealloc(Table *t)
{
    PyMem_RawFree(t->keys);
    PyMem_RawFree(t->parents);
    PyMem_RawFree(t->slots);
    if (t->outbox) {
        for (Py_ssize_t i = 0; i < t->workers; i++)
            Py_XDECREF(t->outbox[i]);
        PyMem_Free(t->outbox);
    }
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static int append_record(PyObject *box, const uint64_t *w, Py_ssize_t nw, int64_t p)
{
    Py_ssize_t at = PyByteArray_GET_SIZE(box);
    if (PyByteArray_Resize(box, at + (nw + 1) * 8) < 0)
        return -1;
    char *b = PyByteArray_AS_STRING(box) + at;
    memcpy(b, w, (size_t)nw * 8);
    memcpy(b + nw * 8, &p, 8);
    return 0;
}

/* add(state, parent) -> index if new, -1 if known, -2 if sent to its owner;
 * parent: an index of this table, or -1 */
static PyObject *Table_add(Table *t, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t w[MAXW];
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "add(state, parent)");
        return NULL;
    }
    if (to_words(t, args[0], w) < 0)
        return NULL;
    long long p = PyLong_AsLongLong(args[1]);
    if (p == -1 && PyErr_Occurred())
        return NULL;
    p = global_id(t, p);
    uint64_t h = hash_words(w, t->words);
    if (t->workers > 1) {
        Py_ssize_t o = owner_of(t, h);
        if (o != t->me) {
            if (append_record(t->outbox[o], w, t->words, p) < 0)
                return NULL;
            return PyLong_FromLong(-2);
        }
    }
    Py_ssize_t r = insert(t, w, h, p);
    if (r == -2)
        return NULL;
    return PyLong_FromSsize_t(r);
}

/* add_xor(state, masks, parent): add(state ^ m, parent) for each m of the
 * tuple `masks` (the explicit search's memoized successors), in order */
static PyObject *Table_add_xor(Table *t, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t s[MAXW], w[MAXW];
    if (nargs != 3 || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "add_xor(state, masks: tuple, parent)");
        return NULL;
    }
    if (to_words(t, args[0], s) < 0)
        return NULL;
    long long p = PyLong_AsLongLong(args[2]);
    if (p == -1 && PyErr_Occurred())
        return NULL;
    p = global_id(t, p);
    Py_ssize_t nm = PyTuple_GET_SIZE(args[1]), nw = t->words;
    for (Py_ssize_t m = 0; m < nm; m++) {
        if (to_words(t, PyTuple_GET_ITEM(args[1], m), w) < 0)
            return NULL;
        for (Py_ssize_t k = 0; k < nw; k++)
            w[k] ^= s[k];
        uint64_t h = hash_words(w, nw);
        if (t->workers > 1) {
            Py_ssize_t o = owner_of(t, h);
            if (o != t->me) {
                if (append_record(t->outbox[o], w, nw, p) < 0)
                    return NULL;
                continue;
            }
        }
        if (insert(t, w, h, p) == -2)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* index(state) -> its index, -1 if not entered here */
static PyObject *Table_index(Table *t, PyObject *o)
{
    uint64_t w[MAXW], slot;
    if (to_words(t, o, w) < 0)
        return NULL;
    return PyLong_FromSsize_t(find(t, w, hash_words(w, t->words), &slot));
}

static int check_index(Table *t, PyObject *o, Py_ssize_t *i)
{
    *i = PyLong_AsSsize_t(o);
    if (*i == -1 && PyErr_Occurred())
        return -1;
    if (*i < 0 || *i >= t->n) {
        PyErr_SetString(PyExc_IndexError, "no such entry");
        return -1;
    }
    return 0;
}

static PyObject *Table_get(Table *t, PyObject *o)
{
    Py_ssize_t i;
    if (check_index(t, o, &i) < 0)
        return NULL;
    return from_words(t, t->keys + i * t->words);
}

static PyObject *Table_parent(Table *t, PyObject *o)
{
    Py_ssize_t i;
    if (check_index(t, o, &i) < 0)
        return NULL;
    return PyLong_FromLongLong(t->parents[i]);
}

/* owner(state) -> the worker the state belongs to */
static PyObject *Table_owner(Table *t, PyObject *o)
{
    uint64_t w[MAXW];
    if (to_words(t, o, w) < 0)
        return NULL;
    return PyLong_FromSsize_t(t->workers > 1 ? owner_of(t, hash_words(w, t->words)) : 0);
}

/* take(worker) -> the records waiting for that worker, as bytes */
static PyObject *Table_take(Table *t, PyObject *o)
{
    Py_ssize_t k = PyLong_AsSsize_t(o);
    if (k == -1 && PyErr_Occurred())
        return NULL;
    if (!t->outbox || k < 0 || k >= t->workers) {
        PyErr_SetString(PyExc_IndexError, "no such worker");
        return NULL;
    }
    PyObject *box = t->outbox[k];
    PyObject *r = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(box), PyByteArray_GET_SIZE(box));
    if (r && PyByteArray_Resize(box, 0) < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return r;
}

/* add_batch(records) -> (index of the first new entry, entries added):
 * the records of `take`, entered in their order; the new ones are the
 * entries from that index on. */
static PyObject *Table_add_batch(Table *t, PyObject *o)
{
    Py_buffer b;
    if (PyObject_GetBuffer(o, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    Py_ssize_t rec = (t->words + 1) * 8, first = t->n, added = 0;
    if (b.len % rec) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "records of another width");
        return NULL;
    }
    uint64_t w[MAXW];
    int64_t p;
    const char *c = b.buf;
    for (Py_ssize_t at = 0; at < b.len; at += rec) {
        memcpy(w, c + at, (size_t)t->words * 8);
        memcpy(&p, c + at + t->words * 8, 8);
        Py_ssize_t r = insert(t, w, hash_words(w, t->words), p);
        if (r == -2) {
            PyBuffer_Release(&b);
            return NULL;
        }
        added += r >= 0;
    }
    PyBuffer_Release(&b);
    return Py_BuildValue("nn", first, added);
}

static PyObject *Table_nbytes(Table *t, PyObject *Py_UNUSED(ignored))
{
    /* the memory in use (not reserved): entries and the index */
    return PyLong_FromSize_t((size_t)t->n * (t->words * 8 + 8) + (t->mask + 1) * 4);
}

static Py_ssize_t Table_len(Table *t)
{
    return t->n;
}

static PyObject *Table_item(Table *t, Py_ssize_t i)
{
    /* iteration walks the entries in order */
    if (i < 0 || i >= t->n) {
        PyErr_SetString(PyExc_IndexError, "no such entry");
        return NULL;
    }
    return from_words(t, t->keys + i * t->words);
}

static int Table_contains(Table *t, PyObject *o)
{
    uint64_t w[MAXW], slot;
    if (to_words(t, o, w) < 0)
        return -1;
    return find(t, w, hash_words(w, t->words), &slot) >= 0;
}

static PyMethodDef Table_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Table_add, METH_FASTCALL,
     "add(state, parent) -> its index if new, -1 if known, -2 if sent to its owner"},
    {"add_xor", (PyCFunction)(void (*)(void))Table_add_xor, METH_FASTCALL,
     "add_xor(state, masks, parent): add(state ^ m, parent) for each mask m of the tuple, in order"},
    {"index", (PyCFunction)Table_index, METH_O, "index(state) -> its index, or -1"},
    {"get", (PyCFunction)Table_get, METH_O, "get(index) -> the state"},
    {"parent", (PyCFunction)Table_parent, METH_O, "parent(index) -> the parent's global id (-1: root)"},
    {"owner", (PyCFunction)Table_owner, METH_O, "owner(state) -> the worker it belongs to"},
    {"take", (PyCFunction)Table_take, METH_O, "take(worker) -> the records sent to it, as bytes"},
    {"add_batch", (PyCFunction)Table_add_batch, METH_O,
     "add_batch(records) -> (first new index, number added)"},
    {"nbytes", (PyCFunction)Table_nbytes, METH_NOARGS, "bytes in use"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Table_members[] = {
    {"words", T_PYSSIZET, offsetof(Table, words), READONLY, "64-bit words per state"},
    {"workers", T_PYSSIZET, offsetof(Table, workers), READONLY, "tables the states are partitioned among"},
    {"me", T_PYSSIZET, offsetof(Table, me), READONLY, "this table's part"},
    {NULL, 0, 0, 0, NULL},
};

static PySequenceMethods Table_seq = {
    .sq_length = (lenfunc)Table_len,
    .sq_item = (ssizeargfunc)Table_item,
    .sq_contains = (objobjproc)Table_contains,
};

static PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rseqcheck.checker.engines._visited.Table",
    .tp_basicsize = sizeof(Table),
    .tp_dealloc = (destructor)Table_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Table(bits, workers=1, me=0): a visited set of packed states with parent links",
    .tp_methods = Table_methods,
    .tp_members = Table_members,
    .tp_as_sequence = &Table_seq,
    .tp_init = (initproc)Table_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef visited_module = {
    PyModuleDef_HEAD_INIT, "_visited", "Packed visited sets for the explicit search.", -1, NULL,
};

PyMODINIT_FUNC PyInit__visited(void)
{
    if (PyType_Ready(&TableType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&visited_module);
    if (!m)
        return NULL;
    Py_INCREF(&TableType);
    if (PyModule_AddObject(m, "Table", (PyObject *)&TableType) < 0) {
        Py_DECREF(&TableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
