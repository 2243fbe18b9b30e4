/** Injected at build and test time from package.json (tools/config). */
declare const __PACKAGE_VERSION__: string;
/** `^<version>` of the @pagemig/core this package was built against (tools/config). */
declare const __CORE_RANGE__: string;
