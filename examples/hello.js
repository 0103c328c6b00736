// %% Who and where are we?
console.log(`Hello from Node.js ${process.version} on ${process.platform}`);

// %% A little arithmetic
const squares = Array.from({ length: 10 }, (_, i) => (i + 1) ** 2);
console.log("squares:", squares.join(", "));
console.log("sum:", squares.reduce((a, b) => a + b, 0));
