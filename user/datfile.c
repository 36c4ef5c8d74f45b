#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datfile.h"
#include "datfile_priv.h"

/* Longest number we accept: "%.6f" of any real RSS is ~20 characters, so this leaves room. */
#define MP_NUM_MAX 128
/* A LINE record uses the keyword and seven fields (FUNC six); anything after is ignored. */
#define MP_MAX_TOKENS 8
/* The most fields a MEM, CHLD or FUNC line can have for its torn-line check (FUNC and a level). */
#define MP_NUM_REC_TOKENS 7

struct tok {
	const char *p;
	size_t n;
};

void mp_datfile__init(struct mp_datfile *df)
{
	memset(df, 0, sizeof(*df));
}

void mp_datfile__release(struct mp_datfile *df)
{
	free(df->cmdline);
	free(df->mem.pts);
	for (size_t i = 0; i < df->n_children; i++)
		free(df->children[i].s.pts);
	free(df->children);
	for (size_t i = 0; i < df->n_funcs; i++) {
		free(df->funcs[i].name);
		free(df->funcs[i].calls);
	}
	free(df->funcs);
	for (size_t i = 0; i < df->n_line_recs; i++) {
		free(df->line_recs[i].func);
		free(df->line_recs[i].file);
	}
	free(df->line_recs);
	for (size_t i = 0; i < df->n_stacks; i++) {
		for (size_t k = 0; k < df->stacks[i].nframes; k++) {
			free(df->stacks[i].frames[k].func);
			free(df->stacks[i].frames[k].file);
		}
		free(df->stacks[i].frames);
	}
	free(df->stacks);
	free(df->child_idx);
	free(df->func_idx);
	mp_datfile__init(df);
}

/* Grow *@arr (of @size-byte items, capacity *@cap) to hold @need items. Returns 0 or -ENOMEM. */
static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 16;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / size)
		return -ENOMEM;
	p = realloc(*arr, ncap * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static int series_push(struct mp_series *s, double t, double mib)
{
	int err = grow((void **)&s->pts, &s->cap, s->n + 1, sizeof(*s->pts));

	if (err)
		return err;
	s->pts[s->n].t = t;
	s->pts[s->n].mib = mib;
	s->n++;
	return 0;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t hash_pid(int pid)
{
	uint64_t h = (uint64_t)(unsigned int)pid * 0x9e3779b97f4a7c15ULL;

	return h ^ (h >> 29);
}

/*
 * The tables hold index + 1 into children[]/funcs[] (0 is an empty slot), kept at most half
 * full so that a probe always ends. They are rebuilt from the arrays when they grow.
 */
static size_t child_hash(const struct mp_datfile *df, size_t i)
{
	return hash_pid(df->children[i].pid);
}

static size_t func_hash(const struct mp_datfile *df, size_t i)
{
	const char *name = df->funcs[i].name;

	return hash_bytes(name, strlen(name));
}

/* Double the table *@idx of *@nslots slots and re-index the @n entries hashed by @hash. */
static int table_grow(struct mp_datfile *df, size_t **idx, size_t *nslots, size_t n,
		      size_t (*hash)(const struct mp_datfile *, size_t))
{
	size_t slots = *nslots ? *nslots * 2 : 64;
	size_t *tab;

	if (slots > SIZE_MAX / sizeof(*tab))
		return -ENOMEM;
	tab = calloc(slots, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t h = hash(df, i) & (slots - 1);

		while (tab[h])
			h = (h + 1) & (slots - 1);
		tab[h] = i + 1;
	}
	free(*idx);
	*idx = tab;
	*nslots = slots;
	return 0;
}

static long child_lookup(const struct mp_datfile *df, int pid, size_t *slot)
{
	size_t h;

	if (!df->child_slots)
		return -1;
	h = hash_pid(pid) & (df->child_slots - 1);
	while (df->child_idx[h]) {
		if (df->children[df->child_idx[h] - 1].pid == pid)
			return (long)(df->child_idx[h] - 1);
		h = (h + 1) & (df->child_slots - 1);
	}
	if (slot)
		*slot = h;
	return -1;
}

static long func_lookup(const struct mp_datfile *df, const char *name, size_t n, size_t *slot)
{
	size_t h;

	if (!df->func_slots)
		return -1;
	h = hash_bytes(name, n) & (df->func_slots - 1);
	while (df->func_idx[h]) {
		const char *have = df->funcs[df->func_idx[h] - 1].name;

		if (!strncmp(have, name, n) && have[n] == '\0')
			return (long)(df->func_idx[h] - 1);
		h = (h + 1) & (df->func_slots - 1);
	}
	if (slot)
		*slot = h;
	return -1;
}

static int get_child(struct mp_datfile *df, int pid, struct mp_child **out)
{
	size_t slot;
	long i;
	int err;

	if ((df->n_children + 1) * 2 > df->child_slots) {
		err = table_grow(df, &df->child_idx, &df->child_slots, df->n_children, child_hash);
		if (err)
			return err;
	}
	i = child_lookup(df, pid, &slot);
	if (i < 0) {
		err = grow((void **)&df->children, &df->children_cap, df->n_children + 1,
			   sizeof(*df->children));
		if (err)
			return err;
		i = (long)df->n_children++;
		memset(&df->children[i], 0, sizeof(df->children[i]));
		df->children[i].pid = pid;
		df->child_idx[slot] = (size_t)i + 1;
	}
	*out = &df->children[i];
	return 0;
}

static int get_func(struct mp_datfile *df, const char *name, size_t n, struct mp_func **out)
{
	size_t slot;
	long i;
	int err;

	if ((df->n_funcs + 1) * 2 > df->func_slots) {
		err = table_grow(df, &df->func_idx, &df->func_slots, df->n_funcs, func_hash);
		if (err)
			return err;
	}
	i = func_lookup(df, name, n, &slot);
	if (i < 0) {
		char *copy;

		err = grow((void **)&df->funcs, &df->funcs_cap, df->n_funcs + 1, sizeof(*df->funcs));
		if (err)
			return err;
		copy = strndup(name, n);
		if (!copy)
			return -ENOMEM;
		i = (long)df->n_funcs++;
		memset(&df->funcs[i], 0, sizeof(df->funcs[i]));
		df->funcs[i].name = copy;
		df->func_idx[slot] = (size_t)i + 1;
	}
	*out = &df->funcs[i];
	return 0;
}

const struct mp_func *mp_datfile__func(const struct mp_datfile *df, const char *name)
{
	long i = func_lookup(df, name, strlen(name), NULL);

	return i < 0 ? NULL : &df->funcs[i];
}

const struct mp_child *mp_datfile__child(const struct mp_datfile *df, int pid)
{
	long i = child_lookup(df, pid, NULL);

	return i < 0 ? NULL : &df->children[i];
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Split @line into at most @max tokens; returns how many (more than @max is reported as max + 1). */
static size_t tokenize(const char *line, size_t len, struct tok *toks, size_t max)
{
	size_t i = 0, n = 0;

	for (;;) {
		size_t start;

		while (i < len && is_blank(line[i]))
			i++;
		if (i == len)
			return n;
		if (n == max)
			return max + 1;
		start = i;
		while (i < len && !is_blank(line[i]))
			i++;
		toks[n].p = line + start;
		toks[n].n = i - start;
		n++;
	}
}

static bool tok_is(const struct tok *t, const char *word)
{
	size_t n = strlen(word);

	return t->n == n && !memcmp(t->p, word, n);
}

/* A finite decimal number: [+-] digits [. digits] [e [+-] digits], or [+-] . digits [e ...]. */
static int parse_num(const struct tok *t, double *out)
{
	char buf[MP_NUM_MAX + 1];
	size_t i = 0, digits = 0;
	char *end;
	double v;

	if (t->n == 0 || t->n > MP_NUM_MAX)
		return -EINVAL;
	if (t->p[i] == '+' || t->p[i] == '-')
		i++;
	while (i < t->n && is_digit(t->p[i]))
		i++, digits++;
	if (i < t->n && t->p[i] == '.') {
		i++;
		while (i < t->n && is_digit(t->p[i]))
			i++, digits++;
	}
	if (!digits)
		return -EINVAL;
	if (i < t->n && (t->p[i] == 'e' || t->p[i] == 'E')) {
		size_t exp_digits = 0;

		i++;
		if (i < t->n && (t->p[i] == '+' || t->p[i] == '-'))
			i++;
		while (i < t->n && is_digit(t->p[i]))
			i++, exp_digits++;
		if (!exp_digits)
			return -EINVAL;
	}
	if (i != t->n)
		return -EINVAL;
	/*
	 * The common case, "%.6f" and "%.4f" of real values: at most 15 significant digits and no
	 * exponent. Then mantissa / 10^k with both exact in a double is one correctly rounded
	 * division, the very value strtod() returns, at a fraction of its cost (strtod was 60% of
	 * a `peak` on a large file).
	 */
	if (digits <= 15 && !memchr(t->p, 'e', t->n) && !memchr(t->p, 'E', t->n)) {
		static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
						1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
		uint64_t mant = 0;
		size_t k = 0, j = 0;
		bool frac = false, neg = t->p[0] == '-';

		if (t->p[0] == '+' || t->p[0] == '-')
			j++;
		for (; j < t->n; j++) {
			if (t->p[j] == '.') {
				frac = true;
				continue;
			}
			mant = mant * 10 + (uint64_t)(t->p[j] - '0');
			k += frac;
		}
		*out = (double)mant / pow10[k];
		if (neg)
			*out = -*out;
		return 0;
	}
	memcpy(buf, t->p, t->n);
	buf[t->n] = '\0';
	errno = 0;
	v = strtod(buf, &end);
	/* Underflow to a tiny or zero value is harmless; overflow to infinity is not. */
	if (end != buf + t->n || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

/* A non-negative decimal integer that fits an int. */
static int parse_uint(const struct tok *t, int *out)
{
	long long v = 0;
	size_t i = 0;

	if (t->n && t->p[0] == '+')
		i++;
	if (i == t->n)
		return -EINVAL;
	for (; i < t->n; i++) {
		if (!is_digit(t->p[i]))
			return -EINVAL;
		v = v * 10 + (t->p[i] - '0');
		if (v > INT_MAX)
			return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

/* A non-negative decimal integer that fits 64 bits (a LINE or STACK count). */
static int parse_u64(const struct tok *t, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (t->n && t->p[0] == '+')
		i++;
	if (i == t->n)
		return -EINVAL;
	for (; i < t->n; i++) {
		unsigned int d;

		if (!is_digit(t->p[i]))
			return -EINVAL;
		d = (unsigned int)(t->p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

ssize_t mp_datfile__unescape(const char *s, size_t n, char *out)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			int hi = n - i >= 3 ? hex_value(s[i + 1]) : -1;
			int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;

			/* %00 would cut the decoded name short: no writer makes it */
			if (lo < 0 || (hi | lo) == 0)
				return -EINVAL;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (out)
			out[w] = c;
		w++;
	}
	if (out)
		out[w] = '\0';
	return (ssize_t)w;
}

/* A malloc'ed decoded copy of the (checked) field @p[0..n), or NULL. */
static char *dup_unescaped(const char *p, size_t n)
{
	char *out = malloc(n + 1);

	if (out)
		(void)mp_datfile__unescape(p, n, out);
	return out;
}

/*
 * The frames field of a STACK record, "<func>:<file>:<line>[;...]" (@n bytes at @p; 0 bytes is
 * no frame): checked, and with @out (room for every frame, zeroed) decoded into it. Returns the
 * number of frames, -EINVAL for a bad field, or -ENOMEM (@out then holds what was copied).
 */
static long stack_frames(const char *p, size_t n, struct mp_frame_rec *out)
{
	size_t off = 0;
	long count = 0;

	if (!n)
		return 0;
	for (;;) {
		const char *seg = p + off, *semi = memchr(seg, ';', n - off);
		size_t len = semi ? (size_t)(semi - seg) : n - off;
		const char *c1 = memchr(seg, ':', len), *c2;
		struct tok num;
		int line;

		if (!c1)
			return -EINVAL;
		c2 = memchr(c1 + 1, ':', (size_t)(seg + len - c1 - 1));
		if (!c2 || memchr(c2 + 1, ':', (size_t)(seg + len - c2 - 1)))
			return -EINVAL;
		num.p = c2 + 1;
		num.n = (size_t)(seg + len - c2 - 1);
		if (c1 == seg || c2 == c1 + 1 || parse_uint(&num, &line) ||
		    mp_datfile__unescape(seg, (size_t)(c1 - seg), NULL) < 0 ||
		    mp_datfile__unescape(c1 + 1, (size_t)(c2 - c1 - 1), NULL) < 0)
			return -EINVAL;
		if (out) {
			out[count].func = dup_unescaped(seg, (size_t)(c1 - seg));
			out[count].file = dup_unescaped(c1 + 1, (size_t)(c2 - c1 - 1));
			out[count].line = line;
			if (!out[count].func || !out[count].file)
				return -ENOMEM;
		}
		count++;
		if (!semi)
			return count;
		off += len + 1;
	}
}

/* An upper-case word such as a future record kind: [A-Z][A-Z0-9_]*. */
static bool is_keyword(const struct tok *t)
{
	if (!t->n || t->p[0] < 'A' || t->p[0] > 'Z')
		return false;
	for (size_t i = 1; i < t->n; i++) {
		char c = t->p[i];

		if (!((c >= 'A' && c <= 'Z') || is_digit(c) || c == '_'))
			return false;
	}
	return true;
}

/* The CMDLINE text of @line: after the keyword, blanks trimmed on both sides. */
static void cmdline_text(const char *line, size_t len, const char **text, size_t *n)
{
	const char *p = line, *end = line + len;

	while (p < end && is_blank(*p))
		p++;
	p += strlen("CMDLINE");
	while (p < end && is_blank(*p))
		p++;
	while (end > p && is_blank(end[-1]))
		end--;
	*text = p;
	*n = (size_t)(end - p);
}

static int scan_fail(struct mp_scan *sc, const char *msg)
{
	sc->err_line = sc->n_lines;
	sc->err_msg = msg;
	return -EINVAL;
}

/*
 * Parse one line into @r. Returns 0 with a record, 1 for a line that holds none (blank, an
 * unknown keyword, a torn last line), or -EINVAL with the reason in @sc.
 */
static int parse_record(const char *line, size_t len, bool complete, struct mp_record *r,
			struct mp_scan *sc)
{
	struct tok t[MP_MAX_TOKENS];
	size_t n;
	int level = -1;
	const char *why;

	if (memchr(line, '\0', len))
		return scan_fail(sc, "unexpected NUL byte: binary data, not a profile");
	n = tokenize(line, len, t, MP_MAX_TOKENS);
	if (n == 0)
		return 1;
	/*
	 * An unterminated last line is a record only when its last time still has its decimals
	 * (every writer prints them): "MEM 99999.0 17" is "MEM 99999.0 1796156891.5788" cut short.
	 */
	if (!complete && n <= MP_NUM_REC_TOKENS &&
	    (tok_is(&t[0], "MEM") || tok_is(&t[0], "CHLD") || (tok_is(&t[0], "FUNC") && n <= 6))) {
		const struct tok *last = &t[n - 1];
		const char *dot = memchr(last->p, '.', last->n);

		if (!dot || dot == last->p + last->n - 1) {
			sc->torn_line = sc->n_lines;
			return 1;
		}
	}
	/* A cut name or stack reads as a whole one: an unterminated LINE or STACK is never kept. */
	if (!complete && (tok_is(&t[0], "LINE") || tok_is(&t[0], "STACK"))) {
		sc->torn_line = sc->n_lines;
		return 1;
	}
	memset(r, 0, sizeof(*r));
	if (tok_is(&t[0], "MEM")) {
		r->kind = MP_REC_MEM;
		if (n >= 3 && !parse_num(&t[1], &r->mib) && !parse_num(&t[2], &r->t))
			return 0;
		why = "bad MEM record, expected 'MEM <MiB> <time>'";
	} else if (tok_is(&t[0], "CHLD")) {
		r->kind = MP_REC_CHLD;
		if (n >= 4 && !parse_uint(&t[1], &r->pid) && !parse_num(&t[2], &r->mib) &&
		    !parse_num(&t[3], &r->t))
			return 0;
		why = "bad CHLD record, expected 'CHLD <pid> <MiB> <time>'";
	} else if (tok_is(&t[0], "FUNC")) {
		r->kind = MP_REC_FUNC;
		if (n >= 6 && !parse_num(&t[2], &r->call.mem_start) &&
		    !parse_num(&t[3], &r->call.t_start) && !parse_num(&t[4], &r->call.mem_end) &&
		    !parse_num(&t[5], &r->call.t_end) && !(n > 6 && parse_uint(&t[6], &level))) {
			r->call.level = level;
			r->text = t[1].p;
			r->len = t[1].n;
			return 0;
		}
		why = "bad FUNC record, expected 'FUNC <name> <MiB> <time> <MiB> <time> [<level>]'";
	} else if (tok_is(&t[0], "LINE")) {
		r->kind = MP_REC_LINE;
		why = "bad LINE record, expected "
		      "'LINE <pid> <grown> <freed> <events> <line> <function> <file>'";
		if (n >= 8 && !parse_uint(&t[1], &r->pid) && !parse_u64(&t[2], &r->grown) &&
		    !parse_u64(&t[3], &r->freed) && !parse_u64(&t[4], &r->events) &&
		    !parse_uint(&t[5], &r->line)) {
			if (mp_datfile__unescape(t[6].p, t[6].n, NULL) >= 0 &&
			    mp_datfile__unescape(t[7].p, t[7].n, NULL) >= 0) {
				r->text = t[6].p;
				r->len = t[6].n;
				r->file = t[7].p;
				r->file_len = t[7].n;
				return 0;
			}
			why = "bad LINE record: a '%' without two hex digits after it (or %00) "
			      "in its function or file";
		}
	} else if (tok_is(&t[0], "STACK")) {
		r->kind = MP_REC_STACK;
		if (n >= 5 && !parse_uint(&t[1], &r->pid) && !parse_u64(&t[2], &r->grown) &&
		    !parse_u64(&t[3], &r->freed) && !parse_u64(&t[4], &r->events) &&
		    stack_frames(n > 5 ? t[5].p : "", n > 5 ? t[5].n : 0, NULL) >= 0) {
			r->text = n > 5 ? t[5].p : "";
			r->len = n > 5 ? t[5].n : 0;
			return 0;
		}
		why = "bad STACK record, expected 'STACK <pid> <grown> <freed> <events> "
		      "<function>:<file>:<line>[;...]' (text %XX-escaped)";
	} else if (tok_is(&t[0], "CMDLINE")) {
		r->kind = MP_REC_CMDLINE;
		cmdline_text(line, len, &r->text, &r->len);
		return 0;
	} else if (is_keyword(&t[0])) {
		/* "ME" at the very end is a cut MEM line rather than a record of a later writer */
		if (!complete) {
			sc->torn_line = sc->n_lines;
			return 1;
		}
		sc->n_skipped++;
		return 1;
	} else {
		why = "not a profile record (expected CMDLINE, MEM, CHLD, FUNC, LINE or STACK)";
	}
	/* a writer killed in the middle of a line leaves exactly this: the rest is good */
	if (!complete) {
		sc->torn_line = sc->n_lines;
		return 1;
	}
	return scan_fail(sc, why);
}

/* Feed the lines of @buf[0..len) to @fn; a last line without '\n' only when @final. */
static int scan_lines(const char *buf, size_t len, bool final, size_t *used, mp_record_fn fn,
		      void *ctx, struct mp_scan *sc)
{
	size_t off = 0;
	int err;

	while (off < len) {
		const char *line = buf + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t n = nl ? (size_t)(nl - line) : len - off;
		struct mp_record r;

		if (!nl && !final)
			break;
		sc->n_lines++;
		err = parse_record(line, n, nl != NULL, &r, sc);
		if (err < 0)
			return err;
		if (err == 0) {
			err = fn(ctx, &r);
			if (err)
				return err;
		}
		off += n + (nl ? 1 : 0);
	}
	*used = off;
	return 0;
}

int mp_datfile__scan_buf(const char *buf, size_t len, mp_record_fn fn, void *ctx,
			 struct mp_scan *sc)
{
	size_t used;

	memset(sc, 0, sizeof(*sc));
	return scan_lines(buf, len, true, &used, fn, ctx, sc);
}

/* Read size, and the longest line we take (a CMDLINE of a huge command line fits). */
#define SCAN_CHUNK (256 * 1024)
#define SCAN_LINE_MAX (64 * 1024 * 1024)

int mp_datfile__scan(const char *path, mp_record_fn fn, void *ctx, struct mp_scan *sc)
{
	size_t cap = SCAN_CHUNK, len = 0;
	struct stat st;
	char *buf = NULL;
	int fd, err = 0;

	memset(sc, 0, sizeof(*sc));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto cleanup;
	}
	if (S_ISDIR(st.st_mode)) {
		err = -EISDIR;
		goto cleanup;
	}
	buf = malloc(cap);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		size_t used;
		ssize_t r;

		if (len == cap) { /* one line fills the buffer: make room for it */
			char *nb;

			if (cap >= SCAN_LINE_MAX) {
				sc->n_lines++;
				err = scan_fail(sc, "line too long for a profile record");
				goto cleanup;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				err = -ENOMEM;
				goto cleanup;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto cleanup;
		}
		/* the file may still be growing under a running `mprof run`: read to its end */
		len += (size_t)r;
		err = scan_lines(buf, len, r == 0, &used, fn, ctx, sc);
		if (err)
			goto cleanup;
		memmove(buf, buf + used, len - used);
		len -= used;
		if (r == 0)
			break;
	}
cleanup:
	free(buf);
	close(fd);
	return err;
}

static int add_line(struct mp_datfile *df, const struct mp_record *r)
{
	struct mp_line_rec *l;
	int err = grow((void **)&df->line_recs, &df->line_recs_cap, df->n_line_recs + 1,
		       sizeof(*df->line_recs));

	if (err)
		return err;
	l = &df->line_recs[df->n_line_recs];
	memset(l, 0, sizeof(*l));
	l->pid = r->pid;
	l->line = r->line;
	l->grown = r->grown;
	l->freed = r->freed;
	l->events = r->events;
	l->func = dup_unescaped(r->text, r->len);
	l->file = dup_unescaped(r->file, r->file_len);
	if (!l->func || !l->file) {
		free(l->func);
		free(l->file);
		return -ENOMEM;
	}
	df->n_line_recs++;
	return 0;
}

static int add_stack(struct mp_datfile *df, const struct mp_record *r)
{
	struct mp_stack_rec *s;
	long n = stack_frames(r->text, r->len, NULL);
	int err;

	if (n < 0)
		return (int)n; /* the scan checked it: a record made by hand */
	err = grow((void **)&df->stacks, &df->stacks_cap, df->n_stacks + 1, sizeof(*df->stacks));
	if (err)
		return err;
	s = &df->stacks[df->n_stacks];
	memset(s, 0, sizeof(*s));
	s->pid = r->pid;
	s->grown = r->grown;
	s->freed = r->freed;
	s->events = r->events;
	if (n) {
		s->frames = calloc((size_t)n, sizeof(*s->frames));
		if (!s->frames)
			return -ENOMEM;
		s->nframes = (size_t)n;
		if (stack_frames(r->text, r->len, s->frames) < 0) {
			for (long k = 0; k < n; k++) {
				free(s->frames[k].func);
				free(s->frames[k].file);
			}
			free(s->frames);
			return -ENOMEM;
		}
	}
	df->n_stacks++;
	return 0;
}

bool mp_line_rec__special(const struct mp_line_rec *r)
{
	return r->line == 0 && !strcmp(r->file, "-");
}

struct pid_first {
	int pid;
	size_t first;
};

static int pid_first_by_pid(const void *a, const void *b)
{
	const struct pid_first *p = a, *q = b;

	if (p->pid != q->pid)
		return (p->pid > q->pid) - (p->pid < q->pid);
	return (p->first > q->first) - (p->first < q->first);
}

static int pid_first_by_first(const void *a, const void *b)
{
	const struct pid_first *p = a, *q = b;

	return (p->first > q->first) - (p->first < q->first);
}

int mp_datfile__line_pids(const struct mp_datfile *df, int **out, size_t *n)
{
	size_t total = df->n_line_recs + df->n_stacks, m = 0;
	struct pid_first *v;
	int *pids;

	*out = NULL;
	*n = 0;
	if (!total)
		return 0;
	/* sorted by pid, then back in order of first appearance: n log n for a fleet's files */
	v = malloc(total * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < total; i++) {
		v[i].pid = i < df->n_line_recs ? df->line_recs[i].pid :
						 df->stacks[i - df->n_line_recs].pid;
		v[i].first = i;
	}
	qsort(v, total, sizeof(*v), pid_first_by_pid);
	for (size_t i = 0; i < total; i++)
		if (!i || v[i].pid != v[i - 1].pid)
			v[m++] = v[i];
	qsort(v, m, sizeof(*v), pid_first_by_first);
	pids = malloc(m * sizeof(*pids));
	if (!pids) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m; i++)
		pids[i] = v[i].pid;
	free(v);
	*out = pids;
	*n = m;
	return 0;
}

int mp_datfile__each_line(const struct mp_datfile *df, int pid, mp_line_rec_fn fn, void *ctx)
{
	for (size_t i = 0; i < df->n_line_recs; i++) {
		int err = pid >= 0 && df->line_recs[i].pid != pid ? 0 : fn(ctx, &df->line_recs[i]);

		if (err)
			return err;
	}
	return 0;
}

int mp_datfile__each_stack(const struct mp_datfile *df, int pid, mp_stack_rec_fn fn, void *ctx)
{
	for (size_t i = 0; i < df->n_stacks; i++) {
		int err = pid >= 0 && df->stacks[i].pid != pid ? 0 : fn(ctx, &df->stacks[i]);

		if (err)
			return err;
	}
	return 0;
}

/* The visitor that keeps everything: mp_datfile__parse() and mp_datfile__read(). */
static int store_record(void *ctx, const struct mp_record *r)
{
	struct mp_datfile *df = ctx;
	struct mp_child *ch;
	struct mp_func *fn;
	char *copy;
	int err;

	switch (r->kind) {
	case MP_REC_MEM:
		return series_push(&df->mem, r->t, r->mib);
	case MP_REC_CHLD:
		err = get_child(df, r->pid, &ch);
		return err ? err : series_push(&ch->s, r->t, r->mib);
	case MP_REC_FUNC:
		err = mp_datfile__add_func_stats(df, r, (const struct mp_func **)&fn);
		if (err)
			return err;
		err = grow((void **)&fn->calls, &fn->cap, fn->n + 1, sizeof(*fn->calls));
		if (err)
			return err;
		fn->calls[fn->n++] = r->call;
		return 0;
	case MP_REC_CMDLINE:
		copy = strndup(r->text, r->len);
		if (!copy)
			return -ENOMEM;
		free(df->cmdline); /* the last one wins, as in memory_profiler */
		df->cmdline = copy;
		return 0;
	case MP_REC_LINE:
		return add_line(df, r);
	case MP_REC_STACK:
		return add_stack(df, r);
	}
	return -EINVAL;
}

int mp_datfile__add_record(struct mp_datfile *df, const struct mp_record *r)
{
	return store_record(df, r);
}

int mp_datfile__note_child(struct mp_datfile *df, int pid)
{
	struct mp_child *ch;

	return get_child(df, pid, &ch);
}

int mp_datfile__add_func_stats(struct mp_datfile *df, const struct mp_record *r,
			       const struct mp_func **out)
{
	struct mp_func *fn;
	int err = get_func(df, r->text, r->len, &fn);

	if (err)
		return err;
	fn->total++;
	if (r->call.t_end - r->call.t_start > fn->longest)
		fn->longest = r->call.t_end - r->call.t_start;
	*out = fn;
	return 0;
}

void mp_datfile__copy_scan(struct mp_datfile *df, const struct mp_scan *sc)
{
	df->n_lines = sc->n_lines;
	df->n_skipped = sc->n_skipped;
	df->err_line = sc->err_line;
	df->err_msg = sc->err_msg;
	df->torn_line = sc->torn_line;
}

int mp_datfile__parse(struct mp_datfile *df, const char *buf, size_t len)
{
	struct mp_scan sc;
	int err = mp_datfile__scan_buf(buf, len, store_record, df, &sc);

	mp_datfile__copy_scan(df, &sc);
	return err;
}

int mp_datfile__read(struct mp_datfile *df, const char *path)
{
	struct mp_scan sc;
	int err = mp_datfile__scan(path, store_record, df, &sc);

	mp_datfile__copy_scan(df, &sc);
	return err;
}

long mp_points__max(const struct mp_point *pts, size_t n)
{
	long best = -1;

	for (size_t i = 0; i < n; i++)
		if (best < 0 || pts[i].mib > pts[best].mib)
			best = (long)i;
	return best;
}

struct span {
	double a, b;
};

static int span_cmp(const void *x, const void *y)
{
	const struct span *p = x, *q = y;

	return (p->a > q->a) - (p->a < q->a);
}

int mp_datfile__func_peak(const struct mp_datfile *df, const struct mp_func *fn, double *mib,
			  double *t)
{
	struct span *sp;
	size_t n = 0;
	bool found = false;

	if (!fn->n)
		return -ENODATA;
	sp = malloc(fn->n * sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	/* Merge the calls into disjoint sorted spans, then find each sample by bisection. */
	for (size_t i = 0; i < fn->n; i++) {
		if (fn->calls[i].t_end < fn->calls[i].t_start)
			continue; /* a clock step backwards: no sample can lie inside */
		sp[n].a = fn->calls[i].t_start;
		sp[n].b = fn->calls[i].t_end;
		n++;
	}
	qsort(sp, n, sizeof(*sp), span_cmp);
	if (n) {
		size_t m = 0;

		for (size_t i = 1; i < n; i++) {
			if (sp[i].a <= sp[m].b) {
				if (sp[i].b > sp[m].b)
					sp[m].b = sp[i].b;
			} else {
				sp[++m] = sp[i];
			}
		}
		n = m + 1;
	}
	for (size_t i = 0; i < df->mem.n; i++) {
		const struct mp_point *p = &df->mem.pts[i];
		size_t lo = 0, hi = n;

		/* the last span starting at or before p->t */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (sp[mid].a <= p->t)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo && p->t <= sp[lo - 1].b && (!found || p->mib > *mib)) {
			*mib = p->mib;
			*t = p->t;
			found = true;
		}
	}
	free(sp);
	return found ? 0 : -ENODATA;
}

int mp_points__fit(const struct mp_point *pts, size_t n, double t0, double *slope,
		   double *intercept)
{
	double base, mt = 0, mm = 0, sxx = 0, sxy = 0;

	if (n < 2)
		return -EDOM;
	base = pts[0].t;
	for (size_t i = 0; i < n; i++) {
		mt += pts[i].t - base;
		mm += pts[i].mib;
	}
	mt /= (double)n;
	mm /= (double)n;
	for (size_t i = 0; i < n; i++) {
		double dt = pts[i].t - base - mt;

		sxx += dt * dt;
		sxy += dt * (pts[i].mib - mm);
	}
	if (!(sxx > 0) || !isfinite(sxy / sxx))
		return -EDOM;
	*slope = sxy / sxx;
	*intercept = mm - *slope * (base + mt - t0);
	return 0;
}

/* ---- choosing profiles ------------------------------------------------------------------- */

/*
 * Length of the character at @p, as Python sees a file name: a valid UTF-8 sequence is one
 * character, and each byte of an invalid one is a character of its own (surrogateescape).
 */
static size_t char_len(const unsigned char *p)
{
	size_t n;
	unsigned int cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 1;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates and values past U+10FFFF are invalid */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 1;
	return n;
}

bool mp_profile__name_matches(const char *name)
{
	static const char prefix[] = "mprofile_", suffix[] = ".dat";
	const unsigned char *p = (const unsigned char *)name;

	if (strncmp(name, prefix, strlen(prefix)))
		return false;
	p += strlen(prefix);
	for (int i = 0; i < 14; i++) {
		if (!*p)
			return false;
		p += char_len(p);
	}
	return !strcmp((const char *)p, suffix);
}

int mp_profile__parse_index(const char *arg, long long *idx)
{
	const char *p = arg;
	unsigned long long v = 0;
	bool neg = false, digit_before = false;

	while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
		p++;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (!is_digit(*p))
		return -EINVAL;
	for (; *p; p++) {
		if (is_digit(*p)) {
			if (v > (unsigned long long)LLONG_MAX / 10)
				return -EINVAL;
			v = v * 10 + (unsigned long long)(*p - '0');
			if (v > (unsigned long long)LLONG_MAX)
				return -EINVAL;
			digit_before = true;
		} else if (*p == '_' && digit_before && is_digit(p[1])) {
			digit_before = false;
		} else {
			break;
		}
	}
	while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
		p++;
	if (*p)
		return -EINVAL;
	*idx = neg ? -(long long)v : (long long)v;
	return 0;
}

int mp_profile__index_pos(size_t n, long long idx, size_t *pos)
{
	if (idx < 0) {
		if ((unsigned long long)-(idx + 1) >= n)
			return -ERANGE;
		*pos = n - (size_t)-(idx + 1) - 1;
		return 0;
	}
	if ((unsigned long long)idx >= n)
		return -ERANGE;
	*pos = (size_t)idx;
	return 0;
}

/* Python's os.path.splitext: where the extension of @path starts (its length if none). */
static size_t ext_start(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	const char *dot = strrchr(base, '.');

	if (!dot)
		return strlen(path);
	for (const char *p = base; p < dot; p++)
		if (*p != '.')
			return (size_t)(dot - path);
	return strlen(path);
}

/* Byte offset of character @k of @s (of @len bytes), clamped to @len as Python slices clamp. */
static size_t char_off(const char *s, size_t len, size_t k)
{
	size_t off = 0;

	while (k-- && off < len) {
		size_t n = char_len((const unsigned char *)s + off);

		off += n > len - off ? len - off : n;
	}
	return off;
}

size_t mp_profile__list_stamp(const char *name, char *out, size_t size)
{
	/* slices [start, end) of the stamp, printed as hour:min:sec day/month/year */
	static const struct {
		size_t a, b;
		char sep;
	} parts[] = {
		{ 8, 10, ':' }, { 10, 12, ':' }, { 12, 14, ' ' },
		{ 6, 8, '/' },	{ 4, 6, '/' },	 { 0, 4, '\0' },
	};
	size_t stem = ext_start(name), w = 0;
	const char *ts = name;

	for (size_t i = 0; i < stem; i++)
		if (name[i] == '_')
			ts = name + i + 1;
	stem -= (size_t)(ts - name);
	if (!size)
		return 0;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t a = char_off(ts, stem, parts[i].a), b = char_off(ts, stem, parts[i].b);

		for (size_t j = a; j < b && w + 1 < size; j++)
			out[w++] = ts[j];
		if (parts[i].sep && w + 1 < size)
			out[w++] = parts[i].sep;
	}
	out[w] = '\0';
	return w;
}

char *mp_profile__ts_companion(const char *path)
{
	size_t e = ext_start(path), len = strlen(path);
	char *out = malloc(len + 4);

	if (!out)
		return NULL;
	memcpy(out, path, e);
	memcpy(out + e, "_ts", 3);
	memcpy(out + e + 3, path + e, len - e + 1);
	return out;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void mp_profile__sort(char **names, size_t n)
{
	if (n > 1)
		qsort(names, n, sizeof(*names), name_cmp);
}

void mp_profiles__release(struct mp_profiles *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->names[i]);
	free(p->names);
	memset(p, 0, sizeof(*p));
}

int mp_profiles__push(struct mp_profiles *p, const char *name)
{
	char *copy;
	int err = grow((void **)&p->names, &p->cap, p->n + 1, sizeof(*p->names));

	if (err)
		return err;
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	p->names[p->n++] = copy;
	return 0;
}

static bool contains(const struct mp_profiles *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->names[i], name))
			return true;
	return false;
}

int mp_profiles__scan(struct mp_profiles *p, const char *dir)
{
	struct dirent *de;
	DIR *d;
	int dfd, err = 0;

	d = opendir(dir);
	if (!d)
		return -errno;
	dfd = dirfd(d);
	for (;;) {
		struct stat st;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				err = -errno;
			break;
		}
		if (!mp_profile__name_matches(de->d_name))
			continue;
		if (fstatat(dfd, de->d_name, &st, 0) || !S_ISREG(st.st_mode))
			continue; /* vanished, a dangling link, or not a file: not a profile */
		err = mp_profiles__push(p, de->d_name);
		if (err)
			break;
	}
	closedir(d);
	if (!err)
		mp_profile__sort(p->names, p->n);
	return err;
}

/* 0 if @path is a regular file, else -EISDIR, -EINVAL (other kinds) or stat's -errno. */
static int check_file(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	return S_ISREG(st.st_mode) ? 0 : -EINVAL;
}

static int select_one(const struct mp_profiles *profiles, const char *arg,
		      enum mp_select_order order, const char **name)
{
	long long idx;
	size_t pos;
	int err;

	if (order == MP_SELECT_INDEX_FIRST && !mp_profile__parse_index(arg, &idx)) {
		if (mp_profile__index_pos(profiles->n, idx, &pos))
			return -ERANGE;
		*name = profiles->names[pos];
		return 0;
	}
	err = check_file(arg);
	if (err == -ENOTDIR)
		err = -ENOENT; /* "file/x": no such path, as os.path.exists() sees it */
	if (err != -ENOENT || order == MP_SELECT_INDEX_FIRST) {
		*name = arg;
		return err;
	}
	if (mp_profile__parse_index(arg, &idx))
		return -ENOENT;
	if (mp_profile__index_pos(profiles->n, idx, &pos))
		return -ERANGE;
	*name = profiles->names[pos];
	return 0;
}

int mp_profiles__select(const struct mp_profiles *profiles, int argc, char *const argv[],
			enum mp_select_order order, struct mp_profiles *out, int *bad)
{
	for (int i = 0; i < argc; i++) {
		const char *name = NULL;
		int err;

		if (!strcmp(argv[i], "--"))
			continue;
		err = select_one(profiles, argv[i], order, &name);
		if (!err && !contains(out, name))
			err = mp_profiles__push(out, name);
		if (err) {
			*bad = i;
			return err;
		}
	}
	return 0;
}

int mp_profiles__add_companions(struct mp_profiles *sel)
{
	for (size_t i = sel->n; i-- > 0;) {
		char *ts = mp_profile__ts_companion(sel->names[i]);
		int err = 0;

		if (!ts)
			return -ENOMEM;
		if (!check_file(ts) && !contains(sel, ts))
			err = mp_profiles__push(sel, ts);
		free(ts);
		if (err)
			return err;
	}
	return 0;
}

int mp_profiles__choose(int argc, char *const argv[], enum mp_select_order order,
			struct mp_profiles *out, bool *newest, char *msg, size_t size)
{
	struct mp_profiles all = { 0 };
	int nargs = 0, bad = 0, err;

	*newest = false;
	err = mp_profiles__scan(&all, ".");
	if (err) {
		snprintf(msg, size, "cannot list the current folder: %s", strerror(-err));
		goto cleanup;
	}
	for (int i = 0; i < argc; i++)
		nargs += strcmp(argv[i], "--") != 0;
	if (!nargs && order == MP_SELECT_PATH_FIRST) {
		if (!all.n) {
			err = -ENOENT;
			snprintf(msg, size, "no mprofile_*.dat file in the current folder "
					    "(give a file, or record one with 'mprof run')");
			goto cleanup;
		}
		*newest = true;
		err = mp_profiles__push(out, all.names[all.n - 1]);
		if (err)
			snprintf(msg, size, "%s", strerror(-err));
		goto cleanup;
	}
	err = mp_profiles__select(&all, argc, argv, order, out, &bad);
	switch (err) {
	case 0:
		break;
	case -ENOENT:
		if (order == MP_SELECT_PATH_FIRST)
			snprintf(msg, size, "'%s' is neither a file nor a profile index", argv[bad]);
		else
			snprintf(msg, size, "no such file or profile index '%s'", argv[bad]);
		break;
	case -ERANGE:
		snprintf(msg, size, "no profile with index %s: the current folder has %zu "
				    "mprofile_*.dat file%s",
			 argv[bad], all.n, all.n == 1 ? "" : "s");
		break;
	case -EISDIR:
		snprintf(msg, size, "'%s' is a directory, not a profile", argv[bad]);
		break;
	case -EINVAL:
		snprintf(msg, size, "'%s' is not a regular file", argv[bad]);
		break;
	default:
		snprintf(msg, size, "cannot access '%s': %s", argv[bad], strerror(-err));
		break;
	}
cleanup:
	mp_profiles__release(&all);
	return err;
}

/* The message of a failed read of @path into @df (err from the read). */
static int load_msg(const struct mp_datfile *df, const char *path, int err, char *msg,
		    size_t size)
{
	switch (err) {
	case 0:
		if (df->mem.n)
			return 0;
		err = -ENODATA;
		snprintf(msg, size, "no MEM samples in '%s': %s", path,
			 df->n_lines ? "the run was too short or the file is truncated" :
				       "the file is empty");
		break;
	case -EINVAL:
		snprintf(msg, size, "'%s' line %zu: %s", path, df->err_line, df->err_msg);
		break;
	case -EISDIR:
		snprintf(msg, size, "'%s' is a directory, not a profile", path);
		break;
	default:
		snprintf(msg, size, "cannot read '%s': %s", path, strerror(-err));
		break;
	}
	return err;
}

int mp_datfile__load(struct mp_datfile *df, const char *path, char *msg, size_t size)
{
	return load_msg(df, path, mp_datfile__read(df, path), msg, size);
}

int mp_datfile__load_reduced(struct mp_datfile *df, const char *path,
			     const struct mp_reduce_opts *o, char *msg, size_t size)
{
	return load_msg(df, path, mp_datfile__read_reduced(df, path, o), msg, size);
}

bool mp_datfile__warning(const struct mp_datfile *df, const char *path, char *msg, size_t size)
{
	if (!df->torn_line)
		return false;
	snprintf(msg, size, "'%s' line %zu: incomplete last line skipped (the writer was "
			    "stopped in the middle of it)",
		 path, df->torn_line);
	return true;
}
