import type { Plugin } from 'vite';

/** The module `code` (JavaScript) with its step generators' plain twins, or null: none. */
export function plainTwins(code: string, file: string): string | null;

/** Vite / Vitest plugin: the plain twins of src/'s modules, after the TypeScript is stripped. */
export function plainTwinsPlugin(): Plugin;
