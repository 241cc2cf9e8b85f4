// -x; one expression, valid C++ and Python (see gpugrad/snippets.py).
-x
