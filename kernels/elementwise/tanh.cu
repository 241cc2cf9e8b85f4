tanh(x)
