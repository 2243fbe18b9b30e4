/** Injected at build and test time from package.json (tools/config). */
declare const __PACKAGE_VERSION__: string;
