x > y
