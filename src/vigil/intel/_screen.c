/* vigil.intel._screen: which raw JSON documents may hold an observable some indicator matches.

   Live matching of plain JSON would otherwise decode every document into Python objects only to find,
   for nearly all of them, nothing. This screen reads the JSON text itself: every string value of a
   document (object keys are skipped) is read the ways the matcher's readers read a field's text
   (event_fields.py: an address or host name with its port split off, the host of a URL, a hash and the
   hashes of a list, an e-mail address, the name of a path), and each result is looked up in one hash
   set of the indicators' keys. A document is a candidate when one lookup answers yes; only candidates
   are decoded and matched by the matcher, which decides.

   So that no hit is lost, the screen answers yes whenever it cannot tell: a string longer than
   MAX_STRING, JSON it cannot read, and text beyond ASCII where the matcher could turn it into ASCII (a
   host name, which it IDNA-encodes; text holding the Kelvin sign, which lower() makes a 'k'; any such text
   when an indicator's key holds text beyond ASCII). Other text beyond ASCII (a user name, a message, the
   file name of a path in Chinese) is read as UTF-8 like any other: it equals no key. Strings are stripped
   of Unicode spaces and measured in characters, as Python strips and measures them. Every reading is a
   superset of the matcher's: it reads any string, not only the fields the matcher reads, ignores ports and
   URL paths, and compares 64-bit hashes of the keys. Text is compared lower-cased, as the matcher compares it.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_TEXT 512      /* event_fields.MAX_TEXT */
#define MAX_URL 8192      /* event_fields.MAX_URL */
#define MAX_STRING 16384  /* a longer string makes its document a candidate */
#define MAX_LIST_ITEMS 64 /* event_fields.MAX_LIST_ITEMS: the matcher reads no further into a list */

enum { TAG_NAME = 1, TAG_HASH, TAG_EMAIL, TAG_FILE, TAG_V4, TAG_V4NET, TAG_V6, TAG_V6NET };

/* --- a set of 64-bit keys: open addressing, 0 is an empty slot ----------------------------------- */

#define FILTER_BITS 23 /* one bit per key in 1 MB, which stays in the core's cache, unlike the slots */

typedef struct {
    uint64_t *slots;
    uint64_t mask;
    Py_ssize_t count;
    uint64_t *filter; /* bit (key >> (64 - FILTER_BITS)): a key with it clear is not held */
} KeySet;

static inline uint64_t mix(uint64_t x) /* splitmix64's finaliser */
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static inline uint64_t tagged(uint64_t h, int tag)
{
    uint64_t key = mix(h ^ ((uint64_t)tag << 56));
    return key ? key : 1;
}

/* Text hashed from its last byte to its first, so that a name's suffixes are hashed in one pass; `bytes`
   gets its bytes or-ed together (its top bit: text beyond ASCII). */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t text_hash(const char *text, Py_ssize_t n, unsigned char *bytes)
{
    uint64_t h = FNV_OFFSET;
    unsigned char all = 0;
    for (Py_ssize_t i = n - 1; i >= 0; i--) {
        all |= (unsigned char)text[i];
        h = (h ^ (unsigned char)text[i]) * FNV_PRIME;
    }
    *bytes = all;
    return h;
}

static int keyset_grow(KeySet *set)
{
    uint64_t size = set->slots ? (set->mask + 1) * 2 : 1024;
    uint64_t *slots = PyMem_Calloc(size, sizeof(uint64_t));
    if (slots == NULL)
        return -1;
    for (uint64_t i = 0; set->slots && i <= set->mask; i++) {
        uint64_t key = set->slots[i];
        if (key) {
            uint64_t at = key & (size - 1);
            while (slots[at])
                at = (at + 1) & (size - 1);
            slots[at] = key;
        }
    }
    PyMem_Free(set->slots);
    set->slots = slots;
    set->mask = size - 1;
    return 0;
}

static int keyset_add(KeySet *set, uint64_t key)
{
    if (set->filter == NULL && (set->filter = PyMem_Calloc((size_t)1 << (FILTER_BITS - 6), sizeof(uint64_t))) == NULL)
        return -1;
    uint64_t bit = key >> (64 - FILTER_BITS);
    set->filter[bit >> 6] |= 1ULL << (bit & 63);
    if (set->slots == NULL || (uint64_t)(set->count + 1) * 2 > set->mask + 1) {
        if (keyset_grow(set) < 0)
            return -1;
    }
    uint64_t at = key & set->mask;
    while (set->slots[at]) {
        if (set->slots[at] == key)
            return 0;
        at = (at + 1) & set->mask;
    }
    set->slots[at] = key;
    set->count++;
    return 0;
}

static inline int keyset_has(const KeySet *set, uint64_t key)
{
    if (set->slots == NULL)
        return 0;
    uint64_t bit = key >> (64 - FILTER_BITS);
    if (!(set->filter[bit >> 6] >> (bit & 63) & 1))
        return 0;
    uint64_t at = key & set->mask;
    for (;;) {
        uint64_t held = set->slots[at];
        if (held == key)
            return 1;
        if (held == 0)
            return 0;
        at = (at + 1) & set->mask;
    }
}

/* --- the screen ---------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    KeySet keys;
    uint64_t v4_prefixes;    /* bit p: an IPv4 network of prefix length p is indexed */
    uint64_t v6_prefixes[3]; /* bits 0..128 */
    uint8_t v4_blocks[8192]; /* bit per /16 block an IPv4 network covers (as the matcher's prefilter) */
    uint8_t v6_blocks[8192];
    int names, hashes, emails, files, v4, v6; /* the kinds of keys held: the readings worth doing */
    int dotless;      /* a URL indicator's host is a single label: such text is looked up as a name too */
    int odd_hosts;    /* a URL indicator's host reads as an address but is none: such text is looked up too */
    int single_label; /* a domain or host name of one label: a name's last label is looked up too */
    int wide_keys;    /* a name, URL host, e-mail address or file name key holds text beyond ASCII */
    int punycode;     /* a name key holds "xn--" (a label IDNA wrote) */
    int always;  /* every document is a candidate (a URL host the screen cannot read) */
} Screen;

typedef enum { PROBE, INSERT } Mode;

static inline int is_space(unsigned char c) /* what str.strip() strips, in ASCII */
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The bytes of a space beyond ASCII (str.isspace: U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029,
   U+202F, U+205F, U+3000) that text starts with; 0 when it starts with none. */
static int wide_space(const unsigned char *t, Py_ssize_t n)
{
    if (n >= 2 && t[0] == 0xc2 && (t[1] == 0x85 || t[1] == 0xa0))
        return 2;
    if (n < 3)
        return 0;
    if ((t[0] == 0xe1 && t[1] == 0x9a && t[2] == 0x80) || (t[0] == 0xe3 && t[1] == 0x80 && t[2] == 0x80)
        || (t[0] == 0xe2 && t[1] == 0x81 && t[2] == 0x9f))
        return 3;
    return t[0] == 0xe2 && t[1] == 0x80 && (t[2] <= 0x8a || t[2] == 0xa8 || t[2] == 0xa9 || t[2] == 0xaf) ? 3 : 0;
}

/* str.strip() of text that starts or ends beyond ASCII. */
static void strip_wide(const unsigned char **text, Py_ssize_t *n)
{
    const unsigned char *t = *text;
    Py_ssize_t len = *n;
    int k;
    for (;;) {
        if (len && is_space(t[0]))
            k = 1;
        else if (len && t[0] >= 0xc2 && (k = wide_space(t, len)) > 0)
            ;
        else
            break;
        t += k;
        len -= k;
    }
    while (len) {
        if (is_space(t[len - 1]))
            len--;
        else if (t[len - 1] >= 0x80 && len >= 2 && wide_space(t + len - 2, 2) == 2)
            len -= 2;
        else if (t[len - 1] >= 0x80 && len >= 3 && wide_space(t + len - 3, 3) == 3)
            len -= 3;
        else
            break;
    }
    *text = t;
    *n = len;
}

/* What str.strip() strips (UTF-8 text). */
static inline void strip(const char **text, Py_ssize_t *n)
{
    const unsigned char *t = (const unsigned char *)*text;
    Py_ssize_t len = *n;
    while (len && is_space(t[0])) {
        t++;
        len--;
    }
    while (len && is_space(t[len - 1]))
        len--;
    if (len && (t[0] >= 0x80 || t[len - 1] >= 0x80))
        strip_wide(&t, &len);
    *text = (const char *)t;
    *n = len;
}

/* Whether UTF-8 text is longer than `limit` characters (as Python counts; most text: its bytes tell). */
static int too_long(const char *t, Py_ssize_t n, Py_ssize_t limit)
{
    if (n <= limit)
        return 0;
    Py_ssize_t characters = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        characters += ((unsigned char)t[i] & 0xc0) != 0x80;
    return characters > limit;
}

/* Whether text beyond ASCII may equal a key once the matcher lower-cases it: when a key holds such text,
   or the text holds the Kelvin sign (U+212A, which lower() makes 'k'; nothing else beyond ASCII lowers to
   ASCII alone). */
static int wide_may_match(const Screen *s, const char *t, Py_ssize_t n)
{
    if (s->wide_keys)
        return 1;
    for (Py_ssize_t i = 0; i + 2 < n; i++) {
        if ((unsigned char)t[i] == 0xe2 && (unsigned char)t[i + 1] == 0x84 && (unsigned char)t[i + 2] == 0xaa)
            return 1;
    }
    return 0;
}

/* A byte's first place in text; a loop, not memchr: the text between two quotes is short, and a call costs
   more than reading it. */
static inline const char *find(const char *t, Py_ssize_t n, char c)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (t[i] == c)
            return t + i;
    }
    return NULL;
}

/* A key of `tag` for text: looked up, or added. */
static int text_key(Screen *s, const char *t, Py_ssize_t n, int tag, Mode mode)
{
    unsigned char wide;
    uint64_t h = text_hash(t, n, &wide);
    if (mode == INSERT)
        return keyset_add(&s->keys, tagged(h, tag)) < 0 ? -1 : 0;
    if (wide & 0x80)
        return wide_may_match(s, t, n);
    return keyset_has(&s->keys, tagged(h, tag));
}

static int name_key(Screen *s, const char *t, Py_ssize_t n, Mode mode)
{
    if (mode == INSERT)
        s->names = 1;
    return text_key(s, t, n, TAG_NAME, mode);
}

/* Characters beyond ASCII that IDNA's nameprep (after lower()) maps to ASCII or to nothing, from Python's
   encodings.idna (Unicode 3.2, fixed): a label of ASCII and these may stay an ASCII label; IDNA writes any
   other label holding text beyond ASCII as "xn--" and its punycode. */
static const uint32_t ASCII_ABLE[][2] = {
    {0xa0,0xa0}, {0xaa,0xaa}, {0xad,0xad}, {0xb2,0xb3}, {0xb9,0xba}, {0xdf,0xdf}, {0x132,0x133}, {0x17f,0x17f},
    {0x1c7,0x1cc}, {0x1f1,0x1f3}, {0x2b0,0x2b0}, {0x2b2,0x2b3}, {0x2b7,0x2b8}, {0x2e1,0x2e3}, {0x34f,0x34f},
    {0x37e,0x37e}, {0x1806,0x1806}, {0x180b,0x180d}, {0x1e9e,0x1e9e}, {0x1fef,0x1fef}, {0x2000,0x200d},
    {0x2024,0x2026}, {0x202f,0x202f}, {0x203c,0x203c}, {0x2047,0x2049}, {0x205f,0x2060}, {0x2070,0x2071},
    {0x2074,0x207a}, {0x207c,0x208a}, {0x208c,0x208e}, {0x20a8,0x20a8}, {0x2100,0x2102}, {0x2105,0x2106},
    {0x210a,0x210e}, {0x2110,0x2113}, {0x2115,0x2116}, {0x2119,0x211d}, {0x2120,0x2122}, {0x2124,0x2124},
    {0x2128,0x2128}, {0x212a,0x212a}, {0x212c,0x212d}, {0x212f,0x2131}, {0x2133,0x2134}, {0x2139,0x2139},
    {0x2145,0x2149}, {0x2160,0x217f}, {0x2460,0x24ea}, {0x2a74,0x2a76}, {0x3000,0x3000}, {0x3251,0x325f},
    {0x32b1,0x32bf}, {0x3371,0x3376}, {0x3380,0x3381}, {0x3383,0x338b}, {0x338e,0x3394}, {0x3396,0x339a},
    {0x339c,0x33a6}, {0x33a9,0x33ad}, {0x33b0,0x33b1}, {0x33b3,0x33b5}, {0x33b7,0x33bb}, {0x33bd,0x33bf},
    {0x33c2,0x33c5}, {0x33c7,0x33dd}, {0xfb00,0xfb06}, {0xfb29,0xfb29}, {0xfe00,0xfe0f}, {0xfe30,0xfe30},
    {0xfe33,0xfe38}, {0xfe4d,0xfe50}, {0xfe52,0xfe52}, {0xfe54,0xfe57}, {0xfe59,0xfe5c}, {0xfe5f,0xfe66},
    {0xfe68,0xfe6b}, {0xfeff,0xfeff}, {0xff01,0xff5e}, {0x1d400,0x1d454}, {0x1d456,0x1d49c}, {0x1d49e,0x1d49f},
    {0x1d4a2,0x1d4a2}, {0x1d4a5,0x1d4a6}, {0x1d4a9,0x1d4ac}, {0x1d4ae,0x1d4b9}, {0x1d4bb,0x1d4bb},
    {0x1d4bd,0x1d4c0}, {0x1d4c2,0x1d4c3}, {0x1d4c5,0x1d505}, {0x1d507,0x1d50a}, {0x1d50d,0x1d514},
    {0x1d516,0x1d51c}, {0x1d51e,0x1d539}, {0x1d53b,0x1d53e}, {0x1d540,0x1d544}, {0x1d546,0x1d546},
    {0x1d54a,0x1d550}, {0x1d552,0x1d6a3}, {0x1d7ce,0x1d7ff}
};

/* The character UTF-8 text starts with, and its bytes (1 for a byte that starts none). */
static uint32_t utf8_at(const unsigned char *t, Py_ssize_t n, int *length)
{
    int extra = t[0] >= 0xf0 ? 3 : t[0] >= 0xe0 ? 2 : t[0] >= 0xc0 ? 1 : 0;
    uint32_t code = extra ? t[0] & (0x3f >> extra) : t[0];
    *length = 1;
    if (extra >= n)
        return 0xfffd;
    for (int k = 1; k <= extra; k++) {
        if ((t[k] & 0xc0) != 0x80)
            return 0xfffd;
        code = code << 6 | (t[k] & 0x3f);
    }
    *length = extra + 1;
    return code;
}

/* Whether IDNA may write a label holding text beyond ASCII as an ASCII label. */
static int may_stay_ascii(const char *label, Py_ssize_t n)
{
    const unsigned char *t = (const unsigned char *)label;
    for (Py_ssize_t i = 0; i < n;) {
        int length;
        uint32_t code = t[i] < 0x80 ? t[i] : utf8_at(t + i, n - i, &length);
        i += t[i] < 0x80 ? 1 : length;
        if (code < 0x80)
            continue;
        if (code == 0xfffd) /* not UTF-8: not what the screen reads */
            return 1;
        size_t low = 0, high = sizeof ASCII_ABLE / sizeof ASCII_ABLE[0];
        while (low < high) {
            size_t middle = (low + high) / 2;
            if (ASCII_ABLE[middle][1] < code)
                low = middle + 1;
            else
                high = middle;
        }
        if (low == sizeof ASCII_ABLE / sizeof ASCII_ABLE[0] || ASCII_ABLE[low][0] > code)
            return 0;
    }
    return 1;
}

/* The bytes of the dot before `end` that IDNA splits labels at: '.', or U+3002, U+FF0E, U+FF61; 0 for none. */
static inline int dot_before(const char *t, Py_ssize_t end)
{
    unsigned char last = (unsigned char)t[end - 1];
    if (last == '.')
        return 1;
    if (last < 0x80 || end < 3)
        return 0;
    const unsigned char *d = (const unsigned char *)t + end - 3;
    return (d[0] == 0xe3 && d[1] == 0x80 && d[2] == 0x82) || (d[0] == 0xef && d[1] == 0xbc && d[2] == 0x8e)
                   || (d[0] == 0xef && d[1] == 0xbd && d[2] == 0xa1) ? 3 : 0;
}

/* A host name as the matcher looks it up: without trailing dots, itself and each parent domain; IDNA-encoded
   where it holds text beyond ASCII (labels split at IDNA's dots too, a label beyond ASCII written "xn--..."). */
static int name_reading(Screen *s, const char *t, Py_ssize_t n, Mode mode)
{
    while (n && t[n - 1] == '.')
        n--;
    if (mode == INSERT) {
        if (find(t, n, '.') == NULL)
            s->single_label = 1;
        for (Py_ssize_t i = 0; i + 3 < n; i++)
            s->punycode |= t[i] == 'x' && t[i + 1] == 'n' && t[i + 2] == '-' && t[i + 3] == '-';
        return name_key(s, t, n, INSERT);
    }
    if (!s->names)
        return 0;
    uint64_t h = FNV_OFFSET;
    int dotted = s->single_label; /* a suffix of one label is looked up only when such a key exists */
    for (Py_ssize_t end = n;;) { /* label by label, from the last */
        Py_ssize_t start = end;
        unsigned char wide = 0;
        while (start > 0 && !dot_before(t, start)) {
            unsigned char c = (unsigned char)t[--start];
            wide |= c;
            h = (h ^ c) * FNV_PRIME;
        }
        if (wide & 0x80) /* this suffix and the longer ones hold an "xn--" label, or one the screen cannot tell */
            return s->punycode || s->wide_keys || may_stay_ascii(t + start, end - start);
        if (dotted && keyset_has(&s->keys, tagged(h, TAG_NAME)))
            return 1;
        dotted = 1;
        if (start == 0)
            return 0;
        h = (h ^ (unsigned char)'.') * FNV_PRIME;
        end = start - dot_before(t, start);
    }
}

static uint64_t v4_network_key(uint32_t address, int prefix)
{
    uint32_t mask = prefix ? 0xffffffffu << (32 - prefix) : 0;
    return tagged(((uint64_t)(address & mask) << 8) | (uint64_t)prefix, TAG_V4NET);
}

static int v4_hit(const Screen *s, uint32_t address)
{
    if (keyset_has(&s->keys, tagged(address, TAG_V4)))
        return 1;
    uint32_t block = address >> 16;
    if (!s->v4_prefixes || !(s->v4_blocks[block >> 3] >> (block & 7) & 1))
        return 0;
    for (int prefix = 0; prefix <= 32; prefix++) {
        if ((s->v4_prefixes >> prefix & 1) && keyset_has(&s->keys, v4_network_key(address, prefix)))
            return 1;
    }
    return 0;
}

typedef struct {
    uint64_t hi, lo;
} V6;

static V6 v6_masked(V6 a, int prefix)
{
    V6 m = a;
    if (prefix <= 64) {
        m.lo = 0;
        m.hi = prefix ? a.hi & (~0ULL << (64 - prefix)) : 0;
    } else if (prefix < 128) {
        m.lo = a.lo & (~0ULL << (128 - prefix));
    }
    return m;
}

static uint64_t v6_key(V6 a, int prefix, int tag) { return tagged(a.hi ^ mix(a.lo ^ (uint64_t)prefix), tag); }

static int v6_hit(const Screen *s, V6 address)
{
    if (keyset_has(&s->keys, v6_key(address, 128, TAG_V6)))
        return 1;
    uint32_t block = (uint32_t)(address.hi >> 48);
    if (!(s->v6_blocks[block >> 3] >> (block & 7) & 1))
        return 0;
    for (int prefix = 0; prefix <= 128; prefix++) {
        if ((s->v6_prefixes[prefix >> 6] >> (prefix & 63) & 1)
            && keyset_has(&s->keys, v6_key(v6_masked(address, prefix), prefix, TAG_V6NET)))
            return 1;
    }
    return 0;
}

/* A dotted quad: all inet_pton takes (the matcher's parser), and leading zeros besides. */
static int parse_v4(const char *t, Py_ssize_t n, uint32_t *address)
{
    uint32_t value = 0, octet = 0;
    int digits = 0, dots = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = t[i];
        if (is_digit(c)) {
            octet = octet * 10 + (uint32_t)(c - '0');
            if (++digits > 3 || octet > 255)
                return 0;
        } else if (c == '.' && digits && ++dots <= 3) {
            value = value << 8 | octet;
            octet = 0;
            digits = 0;
        } else {
            return 0;
        }
    }
    if (dots != 3 || !digits)
        return 0;
    *address = value << 8 | octet;
    return 1;
}

static int parse_v6(const char *t, Py_ssize_t n, V6 *address)
{
    char text[64];
    unsigned char packed[16];
    if (n <= 0 || n >= (Py_ssize_t)sizeof text)
        return 0;
    memcpy(text, t, (size_t)n);
    text[n] = '\0';
    if (inet_pton(AF_INET6, text, packed) != 1)
        return 0;
    address->hi = address->lo = 0;
    for (int i = 0; i < 8; i++) {
        address->hi = address->hi << 8 | packed[i];
        address->lo = address->lo << 8 | packed[8 + i];
    }
    return 1;
}

/* Text the matcher reads as an IPv4 (or IPv6) address: the address, else (text no address parser takes,
   which only a URL indicator's host can equal) the text as a name. */
static int odd_host(Screen *s, const char *t, Py_ssize_t n, Mode mode)
{
    if (mode == INSERT) {
        s->odd_hosts = 1;
        return name_key(s, t, n, INSERT);
    }
    return s->odd_hosts && name_key(s, t, n, PROBE);
}

static int v4_reading(Screen *s, const char *t, Py_ssize_t n, Mode mode)
{
    uint32_t address;
    if (mode == PROBE && !s->v4 && !s->odd_hosts)
        return 0;
    if (!parse_v4(t, n, &address))
        return odd_host(s, t, n, mode);
    if (mode == INSERT) {
        s->v4 = 1;
        return keyset_add(&s->keys, tagged(address, TAG_V4));
    }
    return s->v4 && v4_hit(s, address);
}

static int v6_reading(Screen *s, const char *t, Py_ssize_t n, Mode mode)
{
    V6 address;
    if (mode == PROBE && !s->v6 && !s->odd_hosts)
        return 0;
    if (!parse_v6(t, n, &address))
        return odd_host(s, t, n, mode);
    if (mode == INSERT) {
        s->v6 = 1;
        return keyset_add(&s->keys, v6_key(address, 128, TAG_V6));
    }
    return s->v6 && v6_hit(s, address);
}

/* event_fields.split_address, then the lookups of what it found. */
static int address_reading(Screen *s, const char *t, Py_ssize_t n, Mode mode)
{
    strip(&t, &n);
    if (n == 0 || too_long(t, n, MAX_TEXT) || find(t, n, ' '))
        goto unread;
    Py_ssize_t colons = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        colons += t[i] == ':';
    if (t[0] == '[') {
        const char *end = find(t, n, ']');
        if (end == NULL)
            goto unread;
        n = end - t - 1;
        t++;
        colons = 2;
    } else if (colons == 1) {
        n = find(t, n, ':') - t;
        colons = 0;
    }
    if (colons) {
        const char *zone = find(t, n, '%');
        if (zone)
            n = zone - t;
        if (n >= 7 && memcmp(t, "::ffff:", 7) == 0 && find(t, n, '.'))
            return v4_reading(s, t + 7, n - 7, mode);
        return v6_reading(s, t, n, mode);
    }
    if (n == 0 || (n == 1 && t[0] == '-'))
        goto unread;
    if (is_digit(t[0]) && is_digit(t[n - 1]))
        return v4_reading(s, t, n, mode);
    if (find(t, n, '.'))
        return name_reading(s, t, n, mode);
    if (mode == INSERT) { /* one label: the matcher reads no host here, but a URL's host compares as text */
        s->dotless = 1;
        return name_key(s, t, n, INSERT);
    }
    return s->dotless && name_key(s, t, n, PROBE);
unread:
    if (mode == INSERT) /* a URL indicator whose host the screen cannot read: every document is a candidate */
        s->always = 1;
    return 0;
}

/* event_fields.split_url: the host[:port] of a URL, without scheme and user name. */
static void url_host(const char *t, Py_ssize_t n, const char **host, Py_ssize_t *length)
{
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i + 2 < n; i++) {
        char c = t[i];
        if (c == '/' || c == '?' || c == '#')
            break;
        if (c == ':' && t[i + 1] == '/' && t[i + 2] == '/') {
            start = i + 3;
            break;
        }
    }
    Py_ssize_t end = n;
    for (Py_ssize_t i = start; i < n; i++) {
        if (t[i] == '/' || t[i] == '?' || t[i] == '#') {
            end = i;
            break;
        }
    }
    for (Py_ssize_t i = end - 1; i >= start; i--) {
        if (t[i] == '@') {
            start = i + 1;
            break;
        }
    }
    *host = t + start;
    *length = end - start;
}

static int hash_reading(Screen *s, const char *t, Py_ssize_t n)
{
    strip(&t, &n);
    return (n == 32 || n == 40 || n == 64) && text_key(s, t, n, TAG_HASH, PROBE);
}

/* What a value holds, found as it is copied: which readings can find anything in it. */
enum { HAS_DOT = 1, HAS_COLON = 2, HAS_AT = 4, HAS_EQUALS = 8, HAS_MARK = 16 /* '/', '?', '#' or '@' */ };

static int reads(Screen *s, const char *v, Py_ssize_t n, int has)
{
    const char *t = v;
    Py_ssize_t len = n;
    strip(&t, &len);
    /* An address or a name of several labels holds a '.' or a ':'; a URL's host other text than the value,
       a '/', '?', '#' or '@'. */
    if ((s->names || s->v4 || s->v6) && (has & (HAS_DOT | HAS_COLON) || s->dotless || s->odd_hosts)) {
        if (address_reading(s, t, len, PROBE))
            return 1;
        if (has & HAS_MARK && len && !too_long(t, len, MAX_URL) && t[0] != '/') {
            /* The host the matcher reads as an address or name, then the one it compares URLs by: the host of
               the URL without its scheme and user name (the same text but for odd URLs, "a://b:1://c"). */
            const char *host, *key_host;
            Py_ssize_t host_length, key_host_length;
            url_host(t, len, &host, &host_length);
            if ((host != t || host_length != len) && address_reading(s, host, host_length, PROBE))
                return 1;
            url_host(host, t + len - host, &key_host, &key_host_length);
            if ((key_host != host || key_host_length != host_length)
                && address_reading(s, key_host, key_host_length, PROBE))
                return 1;
        }
    }
    if (s->hashes) {
        if (hash_reading(s, v, n))
            return 1;
        if (has & HAS_EQUALS && !too_long(v, n, MAX_TEXT)) { /* Sysmon's "MD5=...,SHA256=..." */
            const char *part = v, *end = v + n;
            while (part < end) {
                const char *comma = find(part, end - part, ',');
                const char *stop = comma ? comma : end;
                const char *equals = find(part, stop - part, '=');
                if (equals && hash_reading(s, equals + 1, stop - equals - 1))
                    return 1;
                part = stop + 1;
            }
        }
    }
    if (s->emails && has & HAS_AT && !too_long(v, n, MAX_TEXT)) { /* matcher._email */
        const char *a = t;
        Py_ssize_t m = len;
        const char *open = find(a, m, '<');
        if (open) {
            const char *close = find(open + 1, a + m - open - 1, '>');
            m = (close ? close : a + m) - open - 1;
            a = open + 1;
        }
        strip(&a, &m);
        if (m >= 7 && memcmp(a, "mailto:", 7) == 0) {
            a += 7;
            m -= 7;
        }
        while (m && a[m - 1] == '.')
            m--;
        if (text_key(s, a, m, TAG_EMAIL, PROBE))
            return 1;
    }
    if (s->files && !too_long(v, n, MAX_TEXT)) { /* event_fields._path: the last part, stripped of spaces and quotes */
        Py_ssize_t start = n;
        while (start && v[start - 1] != '/' && v[start - 1] != '\\')
            start--;
        const char *f = v + start;
        Py_ssize_t m = n - start;
        strip(&f, &m);
        while (m && f[0] == '"') {
            f++;
            m--;
        }
        while (m && f[m - 1] == '"')
            m--;
        strip(&f, &m);
        if (m && text_key(s, f, m, TAG_FILE, PROBE))
            return 1;
    }
    return 0;
}

/* --- reading a document -------------------------------------------------------------------------- */

/* A character as UTF-8 in `out`: its length. */
static int utf8(int code, char *out)
{
    if (code < 0x800) {
        out[0] = (char)(0xc0 | code >> 6);
        out[1] = (char)(0x80 | (code & 0x3f));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (char)(0xe0 | code >> 12);
        out[1] = (char)(0x80 | (code >> 6 & 0x3f));
        out[2] = (char)(0x80 | (code & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | code >> 18);
    out[1] = (char)(0x80 | (code >> 12 & 0x3f));
    out[2] = (char)(0x80 | (code >> 6 & 0x3f));
    out[3] = (char)(0x80 | (code & 0x3f));
    return 4;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The value of four hex digits; -1 when they are not. */
static int hex4(const char *digits)
{
    int code = 0;
    for (int k = 0; k < 4; k++) {
        int digit = hex_value((unsigned char)digits[k]);
        if (digit < 0)
            return -1;
        code = code << 4 | digit;
    }
    return code;
}

/* What the lower-cased copy of text holds (`has` flags), copied into `out` (which may be `text`); both in one
   pass. Control characters and backslashes are reported through `control` and `escape`. */
static inline int lowered(const char *text, Py_ssize_t n, char *out, unsigned char *control, unsigned char *escape)
{
    unsigned char dot = 0, colon = 0, at = 0, equals = 0, mark = 0, low = 0, backslash = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        low |= c < 0x20;
        backslash |= c == '\\';
        dot |= c == '.';
        colon |= c == ':';
        at |= c == '@';
        equals |= c == '=';
        mark |= c == '/' || c == '?' || c == '#';
        out[i] = (char)(c + ((unsigned char)(c - 'A') < 26 ? 32 : 0));
    }
    *control = low;
    *escape = backslash;
    return (dot ? HAS_DOT : 0) | (colon ? HAS_COLON : 0) | (at ? HAS_AT | HAS_MARK : 0) | (equals ? HAS_EQUALS : 0)
           | (mark ? HAS_MARK : 0);
}

/* A string's text with its escapes read, lower-cased (ASCII letters), into `text` as UTF-8: its length, or -1
   when the screen cannot read it (an escape JSON does not have, a lone surrogate, a raw control character,
   over MAX_STRING bytes). */
static Py_ssize_t unescaped(const char *s, Py_ssize_t n, char *text, int *has)
{
    if (n > MAX_STRING)
        return -1;
    unsigned char control, escape;
    *has = lowered(s, n, text, &control, &escape); /* most strings: this pass is all */
    if (!escape)
        return control ? -1 : n;
    Py_ssize_t len = 0;
    for (Py_ssize_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i++];
        if (c == '\\') {
            if (i >= n)
                return -1;
            switch (s[i++]) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                if (i + 4 > n)
                    return -1;
                int code = hex4(s + i);
                if (code < 0)
                    return -1;
                i += 4;
                if (code >= 0x80) { /* written as UTF-8, a surrogate pair as one character */
                    if (code >= 0xdc00 && code < 0xe000)
                        return -1;
                    if (code >= 0xd800) {
                        if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u')
                            return -1;
                        int low = hex4(s + i + 2);
                        if (low < 0xdc00 || low >= 0xe000)
                            return -1;
                        i += 6;
                        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                    }
                    len += utf8(code, text + len);
                    continue;
                }
                c = (unsigned char)code;
                break;
            }
            default:
                return -1;
            }
        } else if (c < 0x20) {
            return -1;
        }
        text[len++] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
    }
    *has = lowered(text, len, text, &control, &escape);
    return len;
}

/* The first '"' in [p, end), 16 bytes at a time where SSE2 is (every x86-64). */
static inline const char *next_quote(const char *p, const char *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    while (end - p >= 16) {
        int mask = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)p), quote));
        if (mask)
            return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    return find(p, end - p, '"');
}

/* One string value (object keys are skipped): whether it makes its document a candidate. */
static int value_read(Screen *s, const char *start, const char *close, const char *end, char *text)
{
    const char *p = close + 1;
    while (p < end && is_space((unsigned char)*p))
        p++;
    if (p < end && *p == ':')
        return 0; /* an object's key */
    int has;
    Py_ssize_t len = unescaped(start, close - start, text, &has);
    return len < 0 || reads(s, text, len, has);
}

#define MAP_WORDS 256 /* a document of up to 16 KB gets a map of its quotes */

/* The map of a document's quotes, 64 bytes a word; whether it holds a backslash (then its quotes are not
   all the ends of strings). */
static int quote_map(const char *doc, Py_ssize_t n, uint64_t *quotes)
{
    uint64_t backslashes = 0;
    Py_ssize_t i = 0;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    for (; i + 64 <= n; i += 64) {
        uint64_t q = 0, b = 0;
        for (int k = 0; k < 64; k += 16) {
            __m128i chunk = _mm_loadu_si128((const __m128i *)(const void *)(doc + i + k));
            q |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, quote)) << k;
            b |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, backslash)) << k;
        }
        quotes[i >> 6] = q;
        backslashes |= b;
    }
#endif
    for (; i < n; i += 64) {
        uint64_t q = 0;
        for (Py_ssize_t k = 0; k < 64 && i + k < n; k++) {
            q |= (uint64_t)(doc[i + k] == '"') << k;
            backslashes |= doc[i + k] == '\\';
        }
        quotes[i >> 6] = q;
    }
    return backslashes != 0;
}

/* Whether a document may hold a matching observable; `text` (MAX_STRING bytes) is scratch space. */
static int candidate(Screen *s, const char *doc, Py_ssize_t n, char *text)
{
    if (s->always)
        return 1;
    const char *end = doc + n;
    uint64_t quotes[MAP_WORDS];
    if (n <= MAP_WORDS * 64 && !quote_map(doc, n, quotes)) {
        /* No backslash: every quote opens or closes a string, and they pair up in order. */
        const char *open = NULL;
        for (Py_ssize_t word = 0; word < (n + 63) / 64; word++) {
            for (uint64_t bits = quotes[word]; bits; bits &= bits - 1) {
                const char *at = doc + word * 64 + __builtin_ctzll(bits);
                if (open == NULL) {
                    open = at;
                } else {
                    if (value_read(s, open + 1, at, end, text))
                        return 1;
                    open = NULL;
                }
            }
        }
        return open != NULL; /* a string not closed: not JSON the screen reads */
    }
    const char *p = doc;
    for (;;) {
        const char *open = next_quote(p, end);
        if (open == NULL)
            return 0;
        const char *start = open + 1, *close = start;
        for (;;) { /* the closing quote: one not escaped by an odd run of backslashes */
            close = next_quote(close, end);
            if (close == NULL)
                return 1; /* not JSON the screen reads */
            const char *run = close;
            while (run > start && run[-1] == '\\')
                run--;
            if (((close - run) & 1) == 0)
                break;
            close++;
        }
        if (value_read(s, start, close, end, text))
            return 1;
        p = close + 1;
    }
}

/* --- reading an event (a dict a parser wrote, or JSON decoded) ------------------------------------ */

#define MAX_DEPTH 32

static PyObject *mapping_type; /* collections.abc.Mapping: the matcher reads any mapping as an object */

/* Whether a value of an event may hold a matching observable: each str read as a document's strings are (a
   dict's keys are field names, not read), dicts, lists and tuples walked; numbers, booleans, None and other
   objects hold none, as for the matcher. What the screen cannot read is a candidate: text outside ASCII or
   over MAX_STRING, a mapping that is not a dict, nesting deeper than MAX_DEPTH. -1: an error is set. */
static int value_candidate(Screen *s, PyObject *value, char *text, int depth)
{
    if (PyUnicode_Check(value)) {
        if (PyUnicode_READY(value) < 0)
            return -1;
        Py_ssize_t n = PyUnicode_GET_LENGTH(value);
        const char *data = (const char *)PyUnicode_DATA(value);
        if (!PyUnicode_IS_ASCII(value)) {
            data = PyUnicode_AsUTF8AndSize(value, &n); /* kept with the str, for its next reading */
            if (data == NULL) { /* a lone surrogate: the matcher can read it; the screen cannot */
                PyErr_Clear();
                return 1;
            }
        }
        if (n > MAX_STRING)
            return 1;
        unsigned char control, escape; /* control characters and backslashes are text here */
        int has = lowered(data, n, text, &control, &escape);
        return reads(s, text, n, has);
    }
    if (PyLong_CheckExact(value) || PyFloat_CheckExact(value) || value == Py_None || PyBool_Check(value))
        return 0;
    if (depth >= MAX_DEPTH)
        return 1;
    if (PyDict_Check(value)) {
        Py_ssize_t position = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &position, &key, &item)) {
            int found = value_candidate(s, item, text, depth + 1);
            if (found)
                return found;
        }
        return 0;
    }
    if (PyList_Check(value) || PyTuple_Check(value)) {
        PyObject *items = PySequence_Fast(value, "");
        if (items == NULL)
            return -1;
        int found = 0;
        Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
        for (Py_ssize_t i = 0; !found && i < count && i < MAX_LIST_ITEMS; i++)
            found = value_candidate(s, PySequence_Fast_GET_ITEM(items, i), text, depth + 1);
        Py_DECREF(items);
        return found;
    }
    return PyObject_IsInstance(value, mapping_type);
}

static PyObject *Screen_candidate_events(Screen *self, PyObject *events)
{
    PyObject *sequence = PySequence_Fast(events, "events must be a sequence");
    if (sequence == NULL)
        return NULL;
    char *text = PyMem_Malloc(MAX_STRING);
    PyObject *result = text ? PyList_New(0) : PyErr_NoMemory();
    for (Py_ssize_t i = 0; result && i < PySequence_Fast_GET_SIZE(sequence); i++) {
        PyObject *event = PySequence_Fast_GET_ITEM(sequence, i);
        int found = self->always || !PyDict_Check(event) ? 1 : value_candidate(self, event, text, 0);
        if (found < 0) {
            Py_CLEAR(result);
        } else if (found) {
            PyObject *position = PyLong_FromSsize_t(i);
            if (position == NULL || PyList_Append(result, position) < 0)
                Py_CLEAR(result);
            Py_XDECREF(position);
        }
    }
    PyMem_Free(text);
    Py_DECREF(sequence);
    return result;
}

/* --- the Python type ----------------------------------------------------------------------------- */

static void Screen_dealloc(Screen *self)
{
    PyMem_Free(self->keys.slots);
    PyMem_Free(self->keys.filter);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Each str of an iterable, in lower case, as ASCII text (other text can match only text the screen passes
   anyway). */
typedef int (*AddText)(Screen *, const char *, Py_ssize_t);
static int wide_key(Screen *s, AddText add);

static int add_texts(Screen *s, PyObject *iterable, AddText add)
{
    PyObject *iterator = PyObject_GetIter(iterable);
    if (iterator == NULL)
        return -1;
    PyObject *item;
    while ((item = PyIter_Next(iterator)) != NULL) {
        if (!PyUnicode_Check(item)) {
            Py_DECREF(item);
            Py_DECREF(iterator);
            PyErr_SetString(PyExc_TypeError, "indicator keys must be str");
            return -1;
        }
        int result = PyUnicode_IS_ASCII(item)
                         ? add(s, (const char *)PyUnicode_DATA(item), PyUnicode_GET_LENGTH(item)) : wide_key(s, add);
        Py_DECREF(item);
        if (result < 0) {
            Py_DECREF(iterator);
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

static int add_name(Screen *s, const char *t, Py_ssize_t n) { return name_reading(s, t, n, INSERT); }
static int add_hash(Screen *s, const char *t, Py_ssize_t n) { s->hashes = 1; return text_key(s, t, n, TAG_HASH, INSERT); }
static int add_email(Screen *s, const char *t, Py_ssize_t n) { s->emails = 1; return text_key(s, t, n, TAG_EMAIL, INSERT); }
static int add_file(Screen *s, const char *t, Py_ssize_t n) { s->files = 1; return text_key(s, t, n, TAG_FILE, INSERT); }
static int add_url_host(Screen *s, const char *t, Py_ssize_t n) { return address_reading(s, t, n, INSERT) < 0 ? -1 : 0; }
static int add_v4(Screen *s, const char *t, Py_ssize_t n) { return v4_reading(s, t, n, INSERT) < 0 ? -1 : 0; }

/* A key beyond ASCII is not held: such text in a document is a candidate for a reading of its kind (the
   screen does not lower-case beyond ASCII as Python does). Hashes and addresses are ASCII, or match nothing
   the screen reads: every document is then a candidate. */
static int wide_key(Screen *s, AddText add)
{
    s->wide_keys = 1;
    if (add == add_url_host) /* a host of one label, or one no address parser takes: such text too */
        s->names = s->dotless = s->odd_hosts = 1;
    else if (add == add_name)
        s->names = 1;
    else if (add == add_email)
        s->emails = 1;
    else if (add == add_file)
        s->files = 1;
    else
        s->always = 1;
    return 0;
}

static void set_blocks(uint8_t *blocks, uint32_t first, int prefix)
{
    uint32_t span = prefix >= 16 ? 1 : 1u << (16 - prefix);
    for (uint32_t b = first; b < first + span && b < 65536; b++)
        blocks[b >> 3] |= (uint8_t)(1u << (b & 7));
}

/* (network, prefix) pairs: IPv4 networks as int, IPv6 ones as 16 bytes. */
static int add_networks(Screen *s, PyObject *iterable, int family)
{
    PyObject *iterator = PyObject_GetIter(iterable);
    if (iterator == NULL)
        return -1;
    PyObject *item;
    while ((item = PyIter_Next(iterator)) != NULL) {
        unsigned long long v4 = 0;
        const char *v6 = NULL;
        Py_ssize_t v6_length = 0;
        int prefix = -1;
        int parsed = family == 4 ? PyArg_ParseTuple(item, "Ki", &v4, &prefix)
                                 : PyArg_ParseTuple(item, "y#i", &v6, &v6_length, &prefix);
        Py_DECREF(item);
        if (!parsed || prefix < 0 || prefix > (family == 4 ? 32 : 128) || (family == 6 && v6_length != 16)) {
            Py_DECREF(iterator);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "a network is (address, prefix length)");
            return -1;
        }
        uint64_t key;
        if (family == 4) {
            uint32_t network = (uint32_t)v4 & (prefix ? 0xffffffffu << (32 - prefix) : 0);
            s->v4_prefixes |= 1ULL << prefix;
            set_blocks(s->v4_blocks, network >> 16, prefix);
            key = v4_network_key(network, prefix);
            s->v4 = 1;
        } else {
            V6 address = {0, 0};
            for (int i = 0; i < 8; i++) {
                address.hi = address.hi << 8 | (unsigned char)v6[i];
                address.lo = address.lo << 8 | (unsigned char)v6[8 + i];
            }
            V6 network = v6_masked(address, prefix);
            s->v6_prefixes[prefix >> 6] |= 1ULL << (prefix & 63);
            set_blocks(s->v6_blocks, (uint32_t)(network.hi >> 48), prefix);
            key = v6_key(network, prefix, TAG_V6NET);
            s->v6 = 1;
        }
        if (keyset_add(&s->keys, key) < 0) {
            Py_DECREF(iterator);
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

static int add_v6_addresses(Screen *s, PyObject *iterable)
{
    PyObject *iterator = PyObject_GetIter(iterable);
    if (iterator == NULL)
        return -1;
    PyObject *item;
    while ((item = PyIter_Next(iterator)) != NULL) {
        if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) != 16) {
            Py_DECREF(item);
            Py_DECREF(iterator);
            PyErr_SetString(PyExc_ValueError, "an IPv6 address is 16 bytes");
            return -1;
        }
        const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(item);
        V6 address = {0, 0};
        for (int i = 0; i < 8; i++) {
            address.hi = address.hi << 8 | b[i];
            address.lo = address.lo << 8 | b[8 + i];
        }
        Py_DECREF(item);
        s->v6 = 1;
        if (keyset_add(&s->keys, v6_key(address, 128, TAG_V6)) < 0) {
            Py_DECREF(iterator);
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *Screen_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"names", "hashes", "emails", "files", "url_hosts", "ipv4", "ipv4_networks",
                               "ipv6", "ipv6_networks", NULL};
    PyObject *names, *hashes, *emails, *files, *url_hosts, *ipv4, *ipv4_networks, *ipv6, *ipv6_networks;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOOOOOOO", keywords, &names, &hashes, &emails, &files,
                                     &url_hosts, &ipv4, &ipv4_networks, &ipv6, &ipv6_networks))
        return NULL;
    Screen *self = (Screen *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (add_texts(self, names, add_name) < 0 || add_texts(self, hashes, add_hash) < 0
        || add_texts(self, emails, add_email) < 0 || add_texts(self, files, add_file) < 0
        || add_texts(self, url_hosts, add_url_host) < 0 || add_texts(self, ipv4, add_v4) < 0
        || add_networks(self, ipv4_networks, 4) < 0 || add_v6_addresses(self, ipv6) < 0
        || add_networks(self, ipv6_networks, 6) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

typedef struct {
    const char *data;
    Py_ssize_t length; /* -1: not text the screen reads (a candidate) */
} Document;

static PyObject *Screen_candidates(Screen *self, PyObject *documents)
{
    PyObject *sequence = PySequence_Fast(documents, "documents must be a sequence");
    if (sequence == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    PyObject **items = PySequence_Fast_ITEMS(sequence);
    Document *read = PyMem_Calloc((size_t)count + 1, sizeof(Document));
    unsigned char *flags = PyMem_Calloc((size_t)count + 1, 1);
    char *text = PyMem_Malloc(MAX_STRING);
    PyObject *result = NULL;
    if (read == NULL || flags == NULL || text == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = items[i];
        if (i + 16 < count) /* the documents lie all over memory: ask for the next ones' headers early */
            __builtin_prefetch(items[i + 16]);
        read[i].length = -1;
        if (PyBytes_Check(item)) {
            read[i].data = PyBytes_AS_STRING(item);
            read[i].length = PyBytes_GET_SIZE(item);
        } else if (PyUnicode_Check(item)) {
            read[i].data = PyUnicode_AsUTF8AndSize(item, &read[i].length);
            if (read[i].data == NULL)
                goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS /* the documents are held by `sequence`; the set is never changed once built */
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i + 4 < count && read[i + 4].length > 0) { /* likewise their text */
            for (Py_ssize_t at = 0; at < read[i + 4].length && at < 512; at += 64)
                __builtin_prefetch(read[i + 4].data + at);
        }
        flags[i] = read[i].length < 0 || candidate(self, read[i].data, read[i].length, text);
    }
    Py_END_ALLOW_THREADS
    result = PyList_New(0);
    for (Py_ssize_t i = 0; result && i < count; i++) {
        if (flags[i]) {
            PyObject *position = PyLong_FromSsize_t(i);
            if (position == NULL || PyList_Append(result, position) < 0)
                Py_CLEAR(result);
            Py_XDECREF(position);
        }
    }
done:
    PyMem_Free(read);
    PyMem_Free(flags);
    PyMem_Free(text);
    Py_DECREF(sequence);
    return result;
}

static PyObject *Screen_size(Screen *self, void *closure)
{
    (void)closure;
    size_t filter = self->keys.filter ? ((size_t)1 << FILTER_BITS) / 8 : 0;
    return PyLong_FromSize_t(filter + (self->keys.slots ? (size_t)(self->keys.mask + 1) * sizeof(uint64_t) : 0));
}

static PyMethodDef Screen_methods[] = {
    {"candidates", (PyCFunction)Screen_candidates, METH_O,
     "candidates(documents) -> the positions of the JSON documents that may hold a matching observable"},
    {"candidate_events", (PyCFunction)Screen_candidate_events, METH_O,
     "candidate_events(events) -> the positions of the events (dicts) that may hold a matching observable"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Screen_getset[] = {
    {"nbytes", (getter)Screen_size, NULL, "the bytes its key set holds", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ScreenType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vigil.intel._screen.Screen",
    .tp_basicsize = sizeof(Screen),
    .tp_dealloc = (destructor)Screen_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The indicators' keys, for screening raw JSON documents before they are decoded and matched.",
    .tp_methods = Screen_methods,
    .tp_getset = Screen_getset,
    .tp_new = Screen_new,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "vigil.intel._screen", "Screens raw JSON documents for live IOC matching.", -1, NULL, NULL, NULL,
    NULL, NULL,
};

PyMODINIT_FUNC PyInit__screen(void)
{
    if (PyType_Ready(&ScreenType) < 0)
        return NULL;
    PyObject *abc = PyImport_ImportModule("collections.abc");
    if (abc == NULL)
        return NULL;
    mapping_type = PyObject_GetAttrString(abc, "Mapping");
    Py_DECREF(abc);
    if (mapping_type == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ScreenType);
    if (PyModule_AddObject(m, "Screen", (PyObject *)&ScreenType) < 0) {
        Py_DECREF(&ScreenType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
