import asyncio


class K:
    @profile
    def meth(self, n):
        v = [n] * (10 ** 6)
        return v


@profile
async def co():
    a = [1] * (10 ** 6)
    await asyncio.sleep(0.01)
    b = [2] * (10 ** 6)
    return a, b


def plain():
    c = [3] * (10 ** 6)
    return c


profile.add_function(plain)
# Results stay alive, so each table's allocation is really new memory.
kept = K().meth(3), asyncio.run(co())
print(len(kept[0]), sum(map(len, kept[1])))
with profile:
    keep = plain()
