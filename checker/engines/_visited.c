/* The visited set of the explicit search, outside the interpreter's heap,
 * and the search's level loop over it.
 *
 * A state is a non-negative Python int of at most `words` 64-bit words.  The
 * table keeps, in the order states were entered, each state as `words`
 * machine words and the 32-bit global id of its parent (NOPARENT for the
 * root), and an open-addressing index of 64-bit slots (the hash's top 32
 * bits, then the entry's index + 1; 0 empty) addressed by the hash's top
 * bits.  Breadth-first, a level is a contiguous range of entries, so the
 * search needs no frontier of its own: it walks ranges of indices
 * (`expand`, with the blocks' successor masks in `Memo`s).
 *
 * Partitioned (workers > 1): a state belongs to the worker `owner(state)`
 * picks from its hash (or the hash of its bits in the mask `part`); `add`
 * enters the states of this table's worker and appends the others, with
 * their parent ids, to a per-worker outbox that `take` hands over as bytes
 * and `add_batch` enters on the other side.  A parent is given as an index
 * of this table and kept as a global id, local index * workers + worker,
 * so parents can be followed across tables (records carry global ids).
 *
 * Memory per state: 8 * words + 4 (parent) + 8 / load (index, load between
 * 0.35 and 0.7), e.g. 2 words (states of up to 128 bits): 31 to 47 bytes.
 * The arrays grow by doubling; pages not yet written cost no resident
 * memory. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#define MAXW 32 /* words: states of up to 2048 bits */

typedef struct {
    char *buf;
    size_t len, cap;
} Box;

typedef struct {
    PyObject_HEAD
    Py_ssize_t words;   /* 64-bit words per state */
    Py_ssize_t n;       /* entries */
    Py_ssize_t cap;     /* entries the store has room for */
    uint64_t *keys;     /* n * words */
    uint32_t *parents;  /* n: global ids, NOPARENT for none */
    size_t kbytes, pbytes; /* allocated for keys, parents */
    uint64_t *slots;    /* index: hash >> 32 << 32 | entry + 1, 0 empty */
    uint64_t mask;      /* slots - 1 */
    int shift;          /* a hash's home slot is its top bits: h >> shift */
    Py_ssize_t workers, me;
    Box *outbox;        /* per worker: (words + 1) * 8-byte records */
    uint64_t *sent;     /* states sent lately, direct-mapped by hash (SENT entries of words + 1) */
    int by_part;        /* the owner is chosen by the state's bits in `part` only */
    uint64_t part[MAXW];
} Table;

/* Sent states remembered, so that a state reached again from another
 * parent is not sent twice: its owner would drop it (it keeps the first
 * parent), so skipping it changes nothing but the bytes moved. */
#define SENT (1 << 15)

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

/* The int as nw words; -1 with an exception if it is negative or too wide. */
static int int_words(PyObject *o, uint64_t *w, Py_ssize_t nw)
{
    if (!PyLong_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "a state is an int");
        return -1;
    }
    if (nw == 1) {
        unsigned long long v = PyLong_AsUnsignedLongLong(o);
        if (v == (unsigned long long)-1 && PyErr_Occurred())
            return -1;
        w[0] = v;
        return 0;
    }
    memset(w, 0, (size_t)nw * 8);
#if PY_VERSION_HEX < 0x030C0000
    /* CPython 3.11's int: |ob_size| digits of PyLong_SHIFT bits, sign in
     * ob_size; read them directly, it is the search's innermost step */
    Py_ssize_t size = Py_SIZE(o);
    if (size < 0) {
        PyErr_SetString(PyExc_OverflowError, "can't convert negative int to unsigned");
        return -1;
    }
    const digit *d = ((PyLongObject *)o)->ob_digit;
    Py_ssize_t bit = 0;
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
    Py_ssize_t r = PyLong_AsNativeBytes(o, w, nw * 8,
                                        Py_ASNATIVEBYTES_LITTLE_ENDIAN | Py_ASNATIVEBYTES_UNSIGNED_BUFFER |
                                            Py_ASNATIVEBYTES_REJECT_NEGATIVE);
    if (r < 0)
        return -1;
    if (r > nw * 8) {
        PyErr_SetString(PyExc_OverflowError, "state wider than the table");
        return -1;
    }
    return 0;
#else
    return _PyLong_AsByteArray((PyLongObject *)o, (unsigned char *)w, (size_t)nw * 8, 1, 0);
#endif
}

static inline int to_words(Table *t, PyObject *o, uint64_t *w)
{
    return int_words(o, w, t->words);
}

static PyObject *words_int(const uint64_t *w, Py_ssize_t nw)
{
    if (nw == 1)
        return PyLong_FromUnsignedLongLong(w[0]);
#if PY_VERSION_HEX >= 0x030D0000
    return PyLong_FromUnsignedNativeBytes(w, nw * 8, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
    return _PyLong_FromByteArray((const unsigned char *)w, (size_t)nw * 8, 1, 0);
#endif
}

static inline PyObject *from_words(Table *t, const uint64_t *w)
{
    return words_int(w, t->words);
}

/* Memory for the table's big arrays.  On Linux, from 4 MiB up, an array
 * is its own mapping: growing it moves page tables (mremap), not bytes.
 * (Advising huge pages cut the user time by a tenth on the ladder, but
 * the kernel's compaction for them cost more system time than that.) */
#define BIG ((size_t)4 << 20)

static void *big_realloc(void *old, size_t was, size_t now)
{
#ifdef __linux__
    if (now >= BIG) {
        void *p;
        if (old && was >= BIG) {
            p = mremap(old, was, now, MREMAP_MAYMOVE);
        } else {
            p = mmap(NULL, now, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p != MAP_FAILED && old) {
                memcpy(p, old, was);
                PyMem_RawFree(old);
            }
        }
        if (p == MAP_FAILED)
            return NULL;
        return p;
    }
#endif
    (void)was;
    return PyMem_RawRealloc(old, now ? now : 1);
}

/* zeroed */
static void *big_calloc(size_t n)
{
#ifdef __linux__
    if (n >= BIG)
        return big_realloc(NULL, 0, n); /* anonymous pages are zero */
#endif
    return PyMem_RawCalloc(1, n);
}

static void big_free(void *p, size_t n)
{
    if (!p)
        return;
#ifdef __linux__
    if (n >= BIG) {
        munmap(p, n);
        return;
    }
#endif
    (void)n;
    PyMem_RawFree(p);
}

#define NOPARENT UINT32_MAX

#define SLOT(h, e) (((h) >> 32 << 32) | (uint64_t)((e) + 1))

/* The index is addressed by the hash's top bits, which the slots keep:
 * doubling it reads no key, and walks both tables in order (an entry's new
 * home is twice its old one, or one more), so it costs no cache misses. */
static int grow_index(Table *t)
{
    int shift = t->slots ? t->shift - 1 : 64 - 10;
    if (shift < 32) {
        PyErr_SetString(PyExc_MemoryError, "an index of more than 2**32 slots");
        return -1;
    }
    uint64_t ncap = (uint64_t)1 << (64 - shift), m = ncap - 1;
    uint64_t *ns = big_calloc(ncap * sizeof(uint64_t));
    if (!ns) {
        PyErr_NoMemory();
        return -1;
    }
    if (t->slots) {
        /* in old slot order from an empty slot, so that a run which wrapped
         * around the end is placed after what precedes it */
        uint64_t start = 0, cap = t->mask + 1;
        while (t->slots[start])
            start++;
        for (uint64_t k = 0; k < cap; k++) {
            uint64_t e = t->slots[(start + k) & t->mask];
            if (!e)
                continue;
            uint64_t j = (e >> 32) >> (shift - 32);
            while (ns[j])
                j = (j + 1) & m;
            ns[j] = e;
        }
    }
    if (t->slots)
        big_free(t->slots, (t->mask + 1) * sizeof(uint64_t));
    t->slots = ns;
    t->mask = m;
    t->shift = shift;
    return 0;
}

/* a few words: a loop the compiler keeps inline, not a call to memcpy */
static inline void copy(uint64_t *to, const uint64_t *from, Py_ssize_t nw)
{
    for (Py_ssize_t k = 0; k < nw; k++)
        to[k] = from[k];
}

static inline int same(const uint64_t *a, const uint64_t *b, Py_ssize_t nw)
{
    for (Py_ssize_t k = 0; k < nw; k++)
        if (a[k] != b[k])
            return 0;
    return 1;
}

static int grow_store(Table *t)
{
    Py_ssize_t ncap = t->cap ? t->cap * 2 : 1024;
    size_t kb = (size_t)ncap * t->words * 8, pb = (size_t)ncap * 4;
    uint64_t *k = big_realloc(t->keys, t->kbytes, kb);
    if (!k) {
        PyErr_NoMemory();
        return -1;
    }
    t->keys = k;
    t->kbytes = kb;
    uint32_t *p = big_realloc(t->parents, t->pbytes, pb);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    t->parents = p;
    t->pbytes = pb;
    t->cap = ncap;
    return 0;
}

/* The entry of w, or -1; *slot is where it would go.  The key is read
 * only where the slot's hash bits match: most probes cost no cache miss. */
static inline Py_ssize_t find(Table *t, const uint64_t *w, uint64_t h, uint64_t *slot)
{
    uint64_t j = h >> t->shift, hi = h >> 32;
    for (;;) {
        uint64_t e = t->slots[j];
        if (!e) {
            *slot = j;
            return -1;
        }
        if (e >> 32 == hi) {
            Py_ssize_t i = (Py_ssize_t)(uint32_t)e - 1;
            if (same(t->keys + i * t->words, w, t->words))
                return i;
        }
        j = (j + 1) & t->mask;
    }
}

/* Enter w with parent p if new: its index, -1 if known, -2 on error. */
static Py_ssize_t insert(Table *t, const uint64_t *w, uint64_t h, int64_t p)
{
    uint64_t slot;
    if (find(t, w, h, &slot) >= 0)
        return -1;
    if (t->n >= (Py_ssize_t)UINT32_MAX - 1 || p >= (int64_t)NOPARENT) {
        PyErr_SetString(PyExc_MemoryError, "more states than 32-bit entry and parent ids can number");
        return -2;
    }
    if ((uint64_t)(t->n + 1) * 10 > (t->mask + 1) * 7) {
        if (grow_index(t) < 0)
            return -2;
        find(t, w, h, &slot);
    }
    if (t->n == t->cap && grow_store(t) < 0)
        return -2;
    copy(t->keys + t->n * t->words, w, t->words);
    t->parents[t->n] = p < 0 ? NOPARENT : (uint32_t)p;
    t->slots[slot] = SLOT(h, t->n);
    return t->n++;
}

/* Inserts in flight.  An insert waits for two cache misses: its index
 * slot, then the entry the slot names.  Queued PQ deep, each insert's slot
 * is prefetched when it comes in and its entry half-way through, so the
 * misses of several inserts overlap; they are made in arrival order, so
 * the table is the same as with one insert at a time. */
#define PQ 16

typedef struct {
    int head, len;
    uint64_t h[PQ];
    int64_t p[PQ];
    uint64_t w[PQ][MAXW];
} Queue;

/* Make the oldest insert: -1 on error, else 1 if it entered a new state. */
static inline int q_pop(Table *t, Queue *q)
{
    int k = q->head;
    Py_ssize_t r = insert(t, q->w[k], q->h[k], q->p[k]);
    q->head = (q->head + 1) % PQ;
    q->len--;
    return r == -2 ? -1 : r >= 0;
}

static inline int q_push(Table *t, Queue *q, const uint64_t *w, uint64_t h, int64_t p, Py_ssize_t *added)
{
    if (q->len == PQ) {
        int r = q_pop(t, q);
        if (r < 0)
            return -1;
        *added += r;
    }
    int k = (q->head + q->len) % PQ;
    copy(q->w[k], w, t->words);
    q->h[k] = h;
    q->p[k] = p;
    q->len++;
    __builtin_prefetch(&t->slots[h >> t->shift]);
    if (q->len > PQ / 2) {
        int m = (q->head + q->len - 1 - PQ / 2) % PQ;
        uint64_t e = t->slots[q->h[m] >> t->shift];
        if (e >> 32 == q->h[m] >> 32)
            __builtin_prefetch(t->keys + (Py_ssize_t)((uint32_t)e - 1) * t->words);
    }
    return 0;
}

static inline int q_drain(Table *t, Queue *q, Py_ssize_t *added)
{
    while (q->len) {
        int r = q_pop(t, q);
        if (r < 0)
            return -1;
        *added += r;
    }
    return 0;
}

/* The worker that owns state w (hash h).  With a `part` mask, only those
 * bits count: a step that leaves them alone keeps the state with its
 * owner, so fewer states travel. */
static inline Py_ssize_t owner_of(Table *t, const uint64_t *w, uint64_t h)
{
    if (t->by_part) {
        uint64_t x[MAXW];
        for (Py_ssize_t k = 0; k < t->words; k++)
            x[k] = w[k] & t->part[k];
        h = hash_words(x, t->words);
    }
    /* the low bits: the index is addressed by the top ones */
    return (Py_ssize_t)((uint32_t)h % (uint64_t)t->workers);
}

/* The global id of this table's entry p (-1: none) */
static inline long long global_id(Table *t, long long p)
{
    return p < 0 ? -1 : p * t->workers + t->me;
}

static int Table_init(Table *t, PyObject *args, PyObject *kw)
{
    static char *names[] = {"bits", "workers", "me", "part", NULL};
    Py_ssize_t bits, workers = 1, me = 0;
    PyObject *part = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|nnO", names, &bits, &workers, &me, &part))
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
    t->workers = workers;
    t->me = me;
    if (part != Py_None) {
        if (int_words(part, t->part, t->words) < 0)
            return -1;
        t->by_part = 1;
    }
    if (workers > 1) {
        t->outbox = PyMem_RawCalloc((size_t)workers, sizeof(Box));
        if (!t->outbox) {
            PyErr_NoMemory();
            return -1;
        }
        /* slot k holds a flag word (1: used) and the state */
        if (!(t->sent = PyMem_RawCalloc((size_t)SENT * (t->words + 1), 8))) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return grow_index(t) < 0 || grow_store(t) < 0 ? -1 : 0;
}

static void Table_dealloc(Table *t)
{
    big_free(t->keys, t->kbytes);
    big_free(t->parents, t->pbytes);
    if (t->slots)
        big_free(t->slots, (t->mask + 1) * sizeof(uint64_t));
    PyMem_RawFree(t->sent);
    if (t->outbox) {
        for (Py_ssize_t i = 0; i < t->workers; i++)
            PyMem_RawFree(t->outbox[i].buf);
        PyMem_RawFree(t->outbox);
    }
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static int append_record(Box *box, const uint64_t *w, Py_ssize_t nw, int64_t p)
{
    size_t rec = (size_t)(nw + 1) * 8;
    if (box->len + rec > box->cap) {
        size_t cap = box->cap ? box->cap * 2 : 1 << 16;
        char *b = PyMem_RawRealloc(box->buf, cap);
        if (!b) {
            PyErr_NoMemory();
            return -1;
        }
        box->buf = b;
        box->cap = cap;
    }
    uint64_t *b = (uint64_t *)(box->buf + box->len);
    copy(b, w, nw);
    b[nw] = (uint64_t)p;
    box->len += rec;
    return 0;
}

/* Send w (hash h) with parent p to worker o, unless it was sent lately. */
static int send_state(Table *t, Py_ssize_t o, const uint64_t *w, uint64_t h, int64_t p)
{
    uint64_t *c = t->sent + (Py_ssize_t)((h >> 8) & (SENT - 1)) * (t->words + 1);
    if (c[0] && same(c + 1, w, t->words))
        return 0;
    c[0] = 1;
    copy(c + 1, w, t->words);
    return append_record(&t->outbox[o], w, t->words, p);
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
        Py_ssize_t o = owner_of(t, w, h);
        if (o != t->me) {
            if (send_state(t, o, w, h, p) < 0)
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
            Py_ssize_t o = owner_of(t, w, h);
            if (o != t->me) {
                if (send_state(t, o, w, h, p) < 0)
                    return NULL;
                continue;
            }
        }
        if (insert(t, w, h, p) == -2)
            return NULL;
    }
    Py_RETURN_NONE;
}


/* ------------------------------------------------------------------ memo */

/* A block's memo: key (the state's bits the block reads or writes) -> the
 * xor masks of its successors, or "expand in Python" (MIXED: an action of
 * the entry needs a property check or the terminal test).  The Python side
 * makes the entries (checker/engines/compile.py) and keeps its own record
 * of them for coverage; this is the copy the expand loop reads. */

#define MIXED UINT32_MAX

typedef struct {
    PyObject_HEAD
    Py_ssize_t words;
    Py_ssize_t n, cap;      /* entries */
    uint64_t *keys;         /* n * words */
    uint32_t *off, *cnt;    /* masks of entry e: arena[off[e] .. off[e] + cnt[e]) (words each) */
    uint64_t *arena;
    Py_ssize_t used, room;  /* masks in the arena */
    uint32_t *slots;
    uint64_t mask;
} Memo;

static int memo_index(Memo *m, Py_ssize_t ncap)
{
    uint32_t *ns = PyMem_RawCalloc((size_t)ncap, sizeof(uint32_t));
    if (!ns) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < m->n; i++) {
        uint64_t j = hash_words(m->keys + i * m->words, m->words) & (uint64_t)(ncap - 1);
        while (ns[j])
            j = (j + 1) & (uint64_t)(ncap - 1);
        ns[j] = (uint32_t)(i + 1);
    }
    PyMem_RawFree(m->slots);
    m->slots = ns;
    m->mask = (uint64_t)ncap - 1;
    return 0;
}

static int Memo_init(Memo *m, PyObject *args, PyObject *kw)
{
    static char *names[] = {"bits", NULL};
    Py_ssize_t bits;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n", names, &bits))
        return -1;
    m->words = bits < 1 ? 1 : (bits + 63) / 64;
    if (m->words > MAXW) {
        PyErr_SetString(PyExc_ValueError, "states wider than 2048 bits");
        return -1;
    }
    return memo_index(m, 64);
}

static void Memo_dealloc(Memo *m)
{
    PyMem_RawFree(m->keys);
    PyMem_RawFree(m->off);
    PyMem_RawFree(m->cnt);
    PyMem_RawFree(m->arena);
    PyMem_RawFree(m->slots);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

/* The entry of key, or -1. */
static inline Py_ssize_t memo_find(Memo *m, const uint64_t *key, uint64_t *slot)
{
    uint64_t j = hash_words(key, m->words) & m->mask;
    for (;;) {
        uint32_t e = m->slots[j];
        if (!e) {
            *slot = j;
            return -1;
        }
        if (same(m->keys + (Py_ssize_t)(e - 1) * m->words, key, m->words))
            return e - 1;
        j = (j + 1) & m->mask;
    }
}

/* put(key, masks): the entry's xor masks (a tuple of ints), or None: the
 * entry is expanded in Python.  A key already there is replaced. */
static PyObject *Memo_put(Memo *m, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t key[MAXW], slot;
    if (nargs != 2 || (args[1] != Py_None && !PyTuple_Check(args[1]))) {
        PyErr_SetString(PyExc_TypeError, "put(key, masks: tuple | None)");
        return NULL;
    }
    if (int_words(args[0], key, m->words) < 0)
        return NULL;
    Py_ssize_t nm = args[1] == Py_None ? 0 : PyTuple_GET_SIZE(args[1]);
    if (m->used + nm > m->room) {
        Py_ssize_t nr = m->room ? m->room : 256;
        while (nr < m->used + nm)
            nr *= 2;
        uint64_t *a = PyMem_RawRealloc(m->arena, (size_t)nr * m->words * 8);
        if (!a)
            return PyErr_NoMemory();
        m->arena = a;
        m->room = nr;
    }
    Py_ssize_t at = m->used;
    for (Py_ssize_t k = 0; k < nm; k++)
        if (int_words(PyTuple_GET_ITEM(args[1], k), m->arena + (at + k) * m->words, m->words) < 0)
            return NULL;
    m->used += nm;
    Py_ssize_t e = memo_find(m, key, &slot);
    if (e < 0) {
        if ((m->n + 1) * 10 > (Py_ssize_t)(m->mask + 1) * 7) {
            if (memo_index(m, (Py_ssize_t)(m->mask + 1) * 2) < 0)
                return NULL;
            memo_find(m, key, &slot);
        }
        if (m->n == m->cap) {
            Py_ssize_t nc = m->cap ? m->cap * 2 : 64;
            uint64_t *k = PyMem_RawRealloc(m->keys, (size_t)nc * m->words * 8);
            if (k)
                m->keys = k;
            uint32_t *o = PyMem_RawRealloc(m->off, (size_t)nc * 4);
            if (o)
                m->off = o;
            uint32_t *c = PyMem_RawRealloc(m->cnt, (size_t)nc * 4);
            if (c)
                m->cnt = c;
            if (!k || !o || !c)
                return PyErr_NoMemory();
            m->cap = nc;
        }
        e = m->n++;
        memcpy(m->keys + e * m->words, key, (size_t)m->words * 8);
        m->slots[slot] = (uint32_t)(e + 1);
    }
    m->off[e] = (uint32_t)at;
    m->cnt[e] = args[1] == Py_None ? MIXED : (uint32_t)nm;
    Py_RETURN_NONE;
}

static PyObject *Memo_clear(Memo *m, PyObject *Py_UNUSED(ignored))
{
    m->n = m->used = 0;
    memset(m->slots, 0, (size_t)(m->mask + 1) * 4);
    Py_RETURN_NONE;
}

static Py_ssize_t Memo_len(Memo *m)
{
    return m->n;
}

static PyMethodDef Memo_methods[] = {
    {"put", (PyCFunction)(void (*)(void))Memo_put, METH_FASTCALL,
     "put(key, masks): the entry's xor masks (a tuple), or None: expanded in Python"},
    {"clear", (PyCFunction)Memo_clear, METH_NOARGS, "forget every entry"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Memo_seq = {
    .sq_length = (lenfunc)Memo_len,
};

static PyTypeObject MemoType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rseqcheck.checker.engines._visited.Memo",
    .tp_basicsize = sizeof(Memo),
    .tp_dealloc = (destructor)Memo_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Memo(bits): a block's successor masks by key, for Table.expand",
    .tp_methods = Memo_methods,
    .tp_as_sequence = &Memo_seq,
    .tp_init = (initproc)Memo_init,
    .tp_new = PyType_GenericNew,
};

/* expand(lo, hi, plan, term, python, limit) -> (states expanded, transitions)
 *
 * The level loop of the plain search: for each entry i in lo..hi-1 not in
 * the set `term` (terminal states), and each block (mask, memo) of the
 * tuple `plan` in order: the memo's masks for the state's key are xored
 * with the state and entered with parent i; a block without a memo (None),
 * a key not in it, or a MIXED entry is handed to python(b, state, i, n0),
 * which expands it itself and returns its transitions (n0: the transitions
 * before this state).  With limit >= 0, stops after the state at which the
 * table holds limit entries. */
static PyObject *Table_expand(Table *t, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyTuple_Check(args[2]) || !PyAnySet_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "expand(lo, hi, plan: tuple, term: set, python, limit)");
        return NULL;
    }
    Py_ssize_t lo = PyLong_AsSsize_t(args[0]), hi = PyLong_AsSsize_t(args[1]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[5]);
    if (PyErr_Occurred())
        return NULL;
    if (lo < 0 || hi > t->n || lo > hi) {
        PyErr_SetString(PyExc_IndexError, "no such entries");
        return NULL;
    }
    PyObject *plan = args[2], *term = args[3], *python = args[4];
    Py_ssize_t nb = PyTuple_GET_SIZE(plan), nw = t->words;
    if (nb > 256) {
        PyErr_SetString(PyExc_ValueError, "more than 256 blocks");
        return NULL;
    }
    uint64_t masks[256][MAXW];
    Memo *memos[256];
    for (Py_ssize_t b = 0; b < nb; b++) {
        PyObject *it = PyTuple_GET_ITEM(plan, b);
        if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) != 2) {
            PyErr_SetString(PyExc_TypeError, "a plan entry is (mask, memo | None)");
            return NULL;
        }
        if (int_words(PyTuple_GET_ITEM(it, 0), masks[b], nw) < 0)
            return NULL;
        PyObject *m = PyTuple_GET_ITEM(it, 1);
        if (m != Py_None && (!PyObject_TypeCheck(m, &MemoType) || ((Memo *)m)->words != nw)) {
            PyErr_SetString(PyExc_TypeError, "a plan's memo is a Memo of the table's width, or None");
            return NULL;
        }
        memos[b] = m == Py_None ? NULL : (Memo *)m;
    }
    long long n = 0, k = 0;
    uint64_t s[MAXW], key[MAXW], w[MAXW], slot;
    Queue q = {0};
    Py_ssize_t added = 0;
    for (Py_ssize_t i = lo; i < hi; i++) {
        k++;
        if (PySet_GET_SIZE(term)) {
            PyObject *io = PyLong_FromSsize_t(i);
            if (!io)
                return NULL;
            int in = PySet_Contains(term, io);
            Py_DECREF(io);
            if (in < 0)
                return NULL;
            if (in)
                continue;
        }
        /* the table may move while python() adds to it: copy the state */
        copy(s, t->keys + i * nw, nw);
        long long p = global_id(t, i), n0 = n;
        PyObject *sobj = NULL;
        for (Py_ssize_t b = 0; b < nb; b++) {
            Memo *m = memos[b];
            Py_ssize_t e = -1;
            if (m) {
                for (Py_ssize_t x = 0; x < nw; x++)
                    key[x] = s[x] & masks[b][x];
                e = memo_find(m, key, &slot);
            }
            if (e >= 0 && m->cnt[e] != MIXED) {
                const uint64_t *a = m->arena + (Py_ssize_t)m->off[e] * nw;
                uint32_t c = m->cnt[e];
                for (uint32_t j = 0; j < c; j++, a += nw) {
                    for (Py_ssize_t x = 0; x < nw; x++)
                        w[x] = s[x] ^ a[x];
                    uint64_t h = hash_words(w, nw);
                    int r;
                    if (t->workers > 1) {
                        Py_ssize_t o = owner_of(t, w, h);
                        r = o != t->me ? send_state(t, o, w, h, p) : q_push(t, &q, w, h, p, &added);
                    } else {
                        r = q_push(t, &q, w, h, p, &added);
                    }
                    if (r < 0) {
                        Py_XDECREF(sobj);
                        return NULL;
                    }
                }
                n += c;
                continue;
            }
            /* Python adds to the table itself: after the inserts in flight */
            if (q_drain(t, &q, &added) < 0 || (!sobj && !(sobj = words_int(s, nw)))) {
                Py_XDECREF(sobj);
                return NULL;
            }
            PyObject *r = PyObject_CallFunction(python, "nOnL", b, sobj, i, n0);
            if (!r) {
                Py_DECREF(sobj);
                return NULL;
            }
            long long got = PyLong_AsLongLong(r);
            Py_DECREF(r);
            if (got == -1 && PyErr_Occurred()) {
                Py_DECREF(sobj);
                return NULL;
            }
            n += got;
        }
        Py_XDECREF(sobj);
        if (limit >= 0) {
            if (q_drain(t, &q, &added) < 0)
                return NULL;
            if (t->n >= limit)
                break;
        }
    }
    if (q_drain(t, &q, &added) < 0)
        return NULL;
    return Py_BuildValue("LL", k, n);
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
    return PyLong_FromLongLong(t->parents[i] == NOPARENT ? -1 : (long long)t->parents[i]);
}

/* owner(state) -> the worker the state belongs to */
static PyObject *Table_owner(Table *t, PyObject *o)
{
    uint64_t w[MAXW];
    if (to_words(t, o, w) < 0)
        return NULL;
    return PyLong_FromSsize_t(t->workers > 1 ? owner_of(t, w, hash_words(w, t->words)) : 0);
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
    Box *box = &t->outbox[k];
    PyObject *r = PyBytes_FromStringAndSize(box->buf ? box->buf : "", (Py_ssize_t)box->len);
    if (r)
        box->len = 0;
    return r;
}

/* pending(worker) -> bytes waiting in its outbox */
static PyObject *Table_pending(Table *t, PyObject *o)
{
    Py_ssize_t k = PyLong_AsSsize_t(o);
    if (k == -1 && PyErr_Occurred())
        return NULL;
    if (!t->outbox || k < 0 || k >= t->workers) {
        PyErr_SetString(PyExc_IndexError, "no such worker");
        return NULL;
    }
    return PyLong_FromSize_t(t->outbox[k].len);
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
    Queue q = {0};
    for (Py_ssize_t at = 0; at < b.len; at += rec) {
        memcpy(w, c + at, (size_t)t->words * 8);
        memcpy(&p, c + at + t->words * 8, 8);
        if (q_push(t, &q, w, hash_words(w, t->words), p, &added) < 0) {
            PyBuffer_Release(&b);
            return NULL;
        }
    }
    int r = q_drain(t, &q, &added);
    PyBuffer_Release(&b);
    if (r < 0)
        return NULL;
    return Py_BuildValue("nn", first, added);
}

/* reserve(n): grow the index now so that it holds n entries without
 * growing (partitioned workers grow together, not one waiting for the
 * other) */
static PyObject *Table_reserve(Table *t, PyObject *o)
{
    Py_ssize_t n = PyLong_AsSsize_t(o);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    while ((uint64_t)n * 10 > (t->mask + 1) * 7)
        if (grow_index(t) < 0)
            return NULL;
    Py_RETURN_NONE;
}

/* adopt(table, lo, hi) -> entries added: the entries lo..hi-1 of another
 * table of the same width that this one owns, in order, without parents */
static PyObject *Table_adopt(Table *t, PyObject *args)
{
    PyObject *o;
    Py_ssize_t lo, hi, added = 0;
    if (!PyArg_ParseTuple(args, "Onn", &o, &lo, &hi))
        return NULL;
    if (Py_TYPE(o) != Py_TYPE(t) || ((Table *)o)->words != t->words) {
        PyErr_SetString(PyExc_TypeError, "adopt: a Table of the same width");
        return NULL;
    }
    Table *src = (Table *)o;
    if (lo < 0 || hi > src->n || lo > hi) {
        PyErr_SetString(PyExc_IndexError, "no such entries");
        return NULL;
    }
    Queue q = {0};
    for (Py_ssize_t i = lo; i < hi; i++) {
        const uint64_t *w = src->keys + i * t->words;
        uint64_t h = hash_words(w, t->words);
        if (t->workers > 1 && owner_of(t, w, h) != t->me)
            continue;
        if (q_push(t, &q, w, h, -1, &added) < 0)
            return NULL;
    }
    if (q_drain(t, &q, &added) < 0)
        return NULL;
    return PyLong_FromSsize_t(added);
}

static PyObject *Table_nbytes(Table *t, PyObject *Py_UNUSED(ignored))
{
    /* the memory in use (not reserved): entries and the index */
    return PyLong_FromSize_t((size_t)t->n * (t->words * 8 + 4) + (t->mask + 1) * 8);
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
    {"expand", (PyCFunction)(void (*)(void))Table_expand, METH_FASTCALL,
     "expand(lo, hi, plan, term, python, limit) -> (states expanded, transitions)"},
    {"index", (PyCFunction)Table_index, METH_O, "index(state) -> its index, or -1"},
    {"get", (PyCFunction)Table_get, METH_O, "get(index) -> the state"},
    {"parent", (PyCFunction)Table_parent, METH_O, "parent(index) -> the parent's global id (-1: root)"},
    {"owner", (PyCFunction)Table_owner, METH_O, "owner(state) -> the worker it belongs to"},
    {"take", (PyCFunction)Table_take, METH_O, "take(worker) -> the records sent to it, as bytes"},
    {"pending", (PyCFunction)Table_pending, METH_O, "pending(worker) -> bytes in its outbox"},
    {"add_batch", (PyCFunction)Table_add_batch, METH_O,
     "add_batch(records) -> (first new index, number added)"},
    {"reserve", (PyCFunction)Table_reserve, METH_O, "reserve(n): grow the index to hold n entries"},
    {"adopt", (PyCFunction)Table_adopt, METH_VARARGS,
     "adopt(table, lo, hi) -> added: the entries lo..hi-1 of another table that this one owns"},
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
    .tp_doc = "Table(bits, workers=1, me=0, part=None): a visited set of packed states with parent links",
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
    if (PyType_Ready(&TableType) < 0 || PyType_Ready(&MemoType) < 0)
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
    Py_INCREF(&MemoType);
    if (PyModule_AddObject(m, "Memo", (PyObject *)&MemoType) < 0) {
        Py_DECREF(&MemoType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
