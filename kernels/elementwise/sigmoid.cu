// 1/(1+e^-x): exp overflows to inf for x << 0 and the quotient is then exactly 0.
T(1) / (T(1) + exp(-x))
