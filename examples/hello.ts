// TypeScript runs with tsx or ts-node when installed, or with Node.js >= 22.6 (type stripping).
// %% Typed greeting
interface Person {
  name: string;
  languages: string[];
}

const me: Person = { name: "sandbox", languages: ["python", "bash", "javascript", "typescript"] };
console.log(`Hello from ${me.name}, speaking ${me.languages.length} languages`);
