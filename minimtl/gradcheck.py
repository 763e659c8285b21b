def gradcheck(*a, **k):
    raise NotImplementedError
