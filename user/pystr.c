/* CPython str characters to UTF-8 (see pystr.h). */
#include <errno.h>
#include <string.h>

#include "pystr.h"

int mp_pystr__shape(const struct mp_pylayout *l, uint32_t state, struct mp_pystr_shape *out)
{
	unsigned int kind = (state >> l->u_kind_shift) & 7;

	if (kind != 1 && kind != 2 && kind != 4)
		return -EINVAL;
	if (l->u_ready_bit != MP_PYL_NONE && !((state >> l->u_ready_bit) & 1))
		return -EINVAL;
	out->kind = kind;
	out->compact = (state >> l->u_compact_bit) & 1;
	out->ascii = (state >> l->u_ascii_bit) & 1;
	if (out->ascii && (!out->compact || kind != 1))
		return -EINVAL;
	return 0;
}

static uint32_t char_at(unsigned int kind, const uint8_t *p)
{
	uint16_t c2;
	uint32_t c4;

	if (kind == 1)
		return *p;
	if (kind == 2) {
		memcpy(&c2, p, sizeof(c2));
		return c2;
	}
	memcpy(&c4, p, sizeof(c4));
	return c4;
}

size_t mp_pystr__utf8(unsigned int kind, const void *data, size_t n, char *out, size_t outsz)
{
	const uint8_t *p = data;
	size_t o = 0;

	if (!outsz)
		return 0;
	if (kind != 1 && kind != 2 && kind != 4)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = char_at(kind, p + i * kind);
		uint8_t b[4];
		size_t k;

		if (c >= 0xdc80 && c <= 0xdcff) {
			b[0] = (uint8_t)(c - 0xdc00); /* surrogateescape: the original byte */
			k = 1;
		} else {
			if (c == 0 || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
				c = 0xfffd;
			if (c < 0x80) {
				b[0] = (uint8_t)c;
				k = 1;
			} else if (c < 0x800) {
				b[0] = (uint8_t)(0xc0 | (c >> 6));
				b[1] = (uint8_t)(0x80 | (c & 0x3f));
				k = 2;
			} else if (c < 0x10000) {
				b[0] = (uint8_t)(0xe0 | (c >> 12));
				b[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
				b[2] = (uint8_t)(0x80 | (c & 0x3f));
				k = 3;
			} else {
				b[0] = (uint8_t)(0xf0 | (c >> 18));
				b[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
				b[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
				b[3] = (uint8_t)(0x80 | (c & 0x3f));
				k = 4;
			}
		}
		if (o + k >= outsz)
			break;
		memcpy(out + o, b, k);
		o += k;
	}
	out[o] = 0;
	return o;
}
