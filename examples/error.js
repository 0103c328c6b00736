// Throws from inside a function: the editor marks line 5 (the throw) and line 9 (the call).

function checkedDivide(a, b) {
  if (b === 0) {
    throw new RangeError(`cannot divide ${a} by zero`);
  }
  return a / b;
}
console.log(checkedDivide(10, 2), checkedDivide(1, 0));
