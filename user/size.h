/* mp_size: memory sizes as people write them ("512MiB", "2G", "100 MB"). Pure logic. */
#ifndef MP_SIZE_H
#define MP_SIZE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse @s: a number (a fraction is allowed) then a unit, blanks between them allowed:
 * B; KiB MiB GiB TiB and K M G T (powers of 1024, as ulimit and Docker read them); KB MB GB TB
 * (powers of 1000, as disk makers and SI write them). Case does not matter except that a lone
 * "b" is not taken for bits. A number without a unit is refused: in memory tools a bare 512
 * means bytes to some and MiB to others. Stores the size in bytes, rounded down, in *@out.
 * Returns 0, -EINVAL (syntax, no unit, negative) or -ERANGE (above 2^63 bytes).
 */
int mp_size__parse(const char *s, uint64_t *out);

/* @bytes as "512 MiB", "1.5 GiB", "100 KiB", "12 B" into @out (@size bytes). */
void mp_size__format(uint64_t bytes, char *out, size_t size);

#endif
