/** The message that hands the engine's worker a port for Hearth's own questions (see worker.js). */
export const HEARTH_PORT = "hearth.port";
