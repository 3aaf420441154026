/// <reference types="astro/client" />
declare namespace App {
  interface Locals extends import("@sessiond/js/astro").SessiondLocals {}
}
