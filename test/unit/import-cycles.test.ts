/**
 * lib/ has no import cycle through value imports: a module's top level never runs before a module it imports
 * (a cycle makes one of them see the other half-loaded: an `undefined` class at load time, or a call that
 * works only because nothing calls it while the modules load). Type-only imports are erased by the compiler
 * and are left out: `import type …`, `export type … from`, and an `import { type A, type B }` whose every
 * name is a type. Dynamic `import()` loads at call time and is left out too.
 *
 * The graph is read with the TypeScript parser, so comments and strings never count as imports; a cycle
 * fails the test naming its modules in order.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const LIB = path.resolve(__dirname, '../../lib');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The file a relative specifier names (`./x` → x.ts or x/index.ts), or null for a package or a non-TS file. */
function resolveSpecifier(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = path.resolve(path.dirname(from), spec);
  for (const f of [`${base}.ts`, path.join(base, 'index.ts'), base]) if (f.endsWith('.ts') && fs.existsSync(f)) return f;
  return null;
}

/** The specifiers of a file's value imports and value re-exports (see the module comment). */
export function valueImports(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st) && ts.isStringLiteral(st.moduleSpecifier)) {
      const c = st.importClause;
      if (c === undefined) out.push(st.moduleSpecifier.text); // `import './x'`: runs the module
      else if (!c.isTypeOnly) {
        const named = c.namedBindings;
        const onlyTypes = c.name === undefined && named !== undefined && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
        if (!onlyTypes) out.push(st.moduleSpecifier.text);
      }
    } else if (ts.isExportDeclaration(st) && st.moduleSpecifier !== undefined && ts.isStringLiteral(st.moduleSpecifier)) {
      if (st.isTypeOnly) continue;
      const c = st.exportClause;
      const onlyTypes = c !== undefined && ts.isNamedExports(c) && c.elements.length > 0 && c.elements.every((e) => e.isTypeOnly);
      if (!onlyTypes) out.push(st.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(st) && !st.isTypeOnly && ts.isExternalModuleReference(st.moduleReference)) {
      const e = st.moduleReference.expression;
      if (ts.isStringLiteral(e)) out.push(e.text);
    }
  }
  return out;
}

/** lib/'s value-import graph: file → the lib files it imports. */
function importGraph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of sourceFiles(LIB)) {
    const deps = valueImports(f, fs.readFileSync(f, 'utf8'))
      .map((s) => resolveSpecifier(f, s))
      .filter((d): d is string => d !== null && d.startsWith(LIB + path.sep));
    g.set(f, [...new Set(deps)]);
  }
  return g;
}

/** Every strongly connected component of more than one file (or a file importing itself), as one cycle through it. */
export function findCycles(g: Map<string, string[]>): string[][] {
  // Tarjan's algorithm, iterative (lib/ is a few hundred files deep at most, but recursion depth is not ours to spend).
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  for (const root of g.keys()) {
    if (index.has(root)) continue;
    const work: [string, number][] = [[root, 0]];
    while (work.length > 0) {
      const top = work[work.length - 1];
      const [v, i] = top;
      if (i === 0) {
        index.set(v, counter);
        low.set(v, counter++);
        stack.push(v);
        onStack.add(v);
      }
      const deps = g.get(v) ?? [];
      if (i < deps.length) {
        top[1]++;
        const w = deps[i];
        if (!index.has(w)) work.push([w, 0]);
        else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const u = work[work.length - 1][0];
        low.set(u, Math.min(low.get(u)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== v);
        if (comp.length > 1 || (g.get(v) ?? []).includes(v)) cycles.push(cyclePath(g, new Set(comp), v));
      }
    }
  }
  return cycles;
}

/** One concrete cycle inside a strongly connected component, from `start` back to it (breadth-first: a shortest one). */
function cyclePath(g: Map<string, string[]>, comp: Set<string>, start: string): string[] {
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of g.get(v) ?? []) {
      if (!comp.has(w)) continue;
      if (w === start) {
        const p = [v];
        while (p[0] !== start) p.unshift(prev.get(p[0])!);
        return [...p, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

describe('lib import graph', () => {
  it('counts value imports and re-exports, not type-only ones', () => {
    const src = [
      "import type { A } from './a';",
      "import { type B, type C } from './b';",
      "import { type D, e } from './c';",
      "import f from './d';",
      "import * as g from './e';",
      "import './f';",
      "export type { H } from './g';",
      "export { type I } from './h';",
      "export { j } from './i';",
      "export * from './j';",
      "// import { k } from './k';",
      "const s = \"import { l } from './l'\";",
    ].join('\n');
    expect(valueImports('x.ts', src)).to.deep.equal(['./c', './d', './e', './f', './i', './j']);
  });

  it('finds a cycle and names it in order', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
    ]);
    const cycles = findCycles(g).map((c) => c.join(' → '));
    expect(cycles).to.have.length(2);
    expect(cycles).to.include('e → e');
    expect(cycles.find((c) => c.includes('a'))?.split(' → ')).to.have.length(4);
  });

  it('lib/ has no import cycle through value imports', () => {
    const g = importGraph();
    expect(g.size).to.be.greaterThan(50);
    const cycles = findCycles(g).map((c) => c.map((f) => path.relative(path.dirname(LIB), f)).join(' → '));
    expect(cycles, 'import cycles (make one side a type-only import, or move the shared part into its own module)').to.deep.equal([]);
  });
});
