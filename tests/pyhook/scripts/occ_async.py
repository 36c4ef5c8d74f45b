# Coroutines (0.61 cannot run them on 3.12+: asyncio refuses its wrapper).
import asyncio


@profile
def coro_user():
    return asyncio.run(co(3))


@profile
async def co(n):
    out = []
    for i in range(n):
        await asyncio.sleep(0)
        out.append(i)
    res = [j async for j in agen(2)]
    return out, res


async def agen(n):
    for i in range(n):
        yield i



coro_user()
